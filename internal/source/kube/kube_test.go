package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/source"
)

// memTree is a source.Tree of files held in memory.
type memTree map[string][]byte

func (m memTree) Stat(_ context.Context, p string) (source.Entry, error) {
	if b, ok := m[p]; ok {
		return source.Entry{Name: path.Base(p), Type: source.TypeFile, Size: int64(len(b))}, nil
	}
	for k := range m {
		if p == "" || strings.HasPrefix(k, p+"/") {
			return source.Entry{Name: path.Base(p), Type: source.TypeDir}, nil
		}
	}
	return source.Entry{}, fs.ErrNotExist
}

func (m memTree) List(_ context.Context, p string) ([]source.Entry, error) {
	seen := map[string]source.Entry{}
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k, b := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := k[len(prefix):]
		if name, _, dir := strings.Cut(rest, "/"); dir {
			seen[name] = source.Entry{Name: name, Type: source.TypeDir}
		} else {
			seen[name] = source.Entry{Name: name, Type: source.TypeFile, Size: int64(len(b))}
		}
	}
	if len(seen) == 0 {
		return nil, fs.ErrNotExist
	}
	var out []source.Entry
	for _, e := range seen {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m memTree) Open(_ context.Context, p string) (io.ReadCloser, error) {
	b, ok := m[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestReadItemsReportsBadFiles(t *testing.T) {
	tree := memTree{
		"namespaces/a/core/configmaps/good.json":   []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"good","namespace":"a"},"data":{"n":"12345678901234567890"}}`),
		"namespaces/a/core/configmaps/trunc.json":  []byte(`{"apiVersion":"v1","kind":"Conf`),
		"namespaces/a/core/configmaps/other.json":  []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"a"}}`),
		"namespaces/a/core/configmaps/ns.json":     []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ns","namespace":"b"}}`),
		"namespaces/a/core/configmaps/null.json":   []byte(`null`),
		"namespaces/a/core/configmaps/nokind.json": []byte(`{"apiVersion":"v1","metadata":{"name":"nokind","namespace":"a"}}`),
		"cluster/core/namespaces/a.json":           []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}} trailing`),
		"kubernetes.json":                          []byte(`{}`),
	}
	items, err := readItems(context.Background(), tree, 4)
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for _, it := range items {
		if it.err != nil {
			errs[path.Base(it.path)] = it.err.Error()
		} else {
			errs[path.Base(it.path)] = ""
		}
	}
	want := map[string]string{
		"good.json":   "",
		"trunc.json":  "unexpected EOF",
		"other.json":  `names "x", not "other"`,
		"ns.json":     `in namespace "b", not "a"`,
		"null.json":   "not an object",
		"nokind.json": "no kind",
		"a.json":      "data after the object",
	}
	for name, w := range want {
		got, ok := errs[name]
		if !ok {
			t.Errorf("%s not read", name)
			continue
		}
		if w == "" && got != "" || w != "" && !strings.Contains(got, w) {
			t.Errorf("%s: error %q, want %q", name, got, w)
		}
		if w != "" && !strings.Contains(got, name) {
			t.Errorf("%s: error %q does not name the file", name, got)
		}
	}
	// Numbers stay exact.
	for _, it := range items {
		if it.name == "good" {
			b, _ := json.Marshal(it.obj)
			if !strings.Contains(string(b), "12345678901234567890") {
				t.Errorf("number changed: %s", b)
			}
		}
	}
	if _, err := readItems(context.Background(), memTree{"x": nil}, 1); err == nil {
		t.Error("a tree without objects gave no error")
	}
}

func TestFilter(t *testing.T) {
	f := Filter{IncludeNamespaces: []string{"shop*", "db"}, ExcludeNamespaces: []string{"shop-old"},
		IncludeResources: []string{"deployments.apps", "cm", "*.example.com"}, ExcludeResources: []string{"widgets.example.com"}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]bool{"shop": true, "shop-2": true, "shop-old": false, "db": true, "dbx": false} {
		if f.Namespace(ns) != want {
			t.Errorf("namespace %s: %v", ns, !want)
		}
	}
	for _, c := range []struct {
		r    Resource
		want bool
	}{
		{Resource{Group: "apps", Resource: "deployments", Kind: "Deployment"}, true},
		{Resource{Resource: "configmaps", Kind: "ConfigMap", ShortNames: []string{"cm"}}, true},
		{Resource{Resource: "secrets", Kind: "Secret"}, false},
		{Resource{Group: "example.com", Resource: "gadgets", Kind: "Gadget"}, true},
		{Resource{Group: "example.com", Resource: "widgets", Kind: "Widget"}, false},
	} {
		if got := f.Resource(c.r); got != c.want {
			t.Errorf("%s: %v, want %v", c.r.GroupResource(), got, c.want)
		}
	}
	if f.LiteralNamespaces() != nil {
		t.Error("globs are not literal")
	}
	if (&Filter{IncludeNamespaces: []string{"[x"}}).Validate() == nil {
		t.Error("a bad glob passed")
	}
	// Kinds match case-insensitively.
	if !(&Filter{IncludeResources: []string{"Deployment"}}).Resource(Resource{Group: "apps", Resource: "deployments", Kind: "Deployment"}) {
		t.Error("kind did not match")
	}
}

func TestParseMapping(t *testing.T) {
	m, err := ParseMapping([]string{"a=b,c=d", "e=f"})
	if err != nil || len(m) != 3 || m["a"] != "b" || m["e"] != "f" {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"a", "=b", "a=", "a=B", "a=b_c", "a=-b", "a=" + strings.Repeat("x", 64)} {
		if _, err := ParseMapping([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseMapping([]string{"a=b", "a=c"}); err == nil {
		t.Error("a namespace mapped twice was accepted")
	}
}

func TestRestoreOrder(t *testing.T) {
	order := []string{"customresourcedefinitions.apiextensions.k8s.io", "namespaces", "persistentvolumes",
		"persistentvolumeclaims", "serviceaccounts", "secrets", "configmaps", "services", "pods", "deployments.apps"}
	for i := 1; i < len(order); i++ {
		if tier(order[i-1], false) >= tier(order[i], false) {
			t.Errorf("%s is not restored before %s", order[i-1], order[i])
		}
	}
	if tier("widgets.example.com", true) <= tier("ingresses.networking.k8s.io", false) ||
		tier("widgets.example.com", true) <= tier("somethingelse.k8s.io", false) {
		t.Error("custom resources are not last")
	}
}

func TestModifiers(t *testing.T) {
	m, err := ParseModifiers([]byte(`version: v1
resourceModifierRules:
- conditions: {groupResource: deployments.apps, namespaces: ["prod*"], resourceNameRegex: "^web"}
  patches:
  - {operation: replace, path: /spec/replicas, value: 1}
  - {operation: add, path: /metadata/annotations, value: {a: b}}
- conditions: {groupResource: "*", labelSelector: {matchLabels: {tier: db}}}
  mergePatches:
  - patchData: '{"metadata": {"labels": {"restored": "true"}}}'
`))
	if err != nil {
		t.Fatal(err)
	}
	obj := []byte(`{"metadata":{"name":"web-1","labels":{"tier":"db"}},"spec":{"replicas":3}}`)
	out, n, err := m.Apply(obj, "apps", "deployments", "prod-eu", "web-1", map[string]string{"tier": "db"})
	if err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	var got map[string]any
	_ = json.Unmarshal(out, &got)
	spec := got["spec"].(map[string]any)
	md := got["metadata"].(map[string]any)
	if spec["replicas"] != float64(1) || md["annotations"].(map[string]any)["a"] != "b" || md["labels"].(map[string]any)["restored"] != "true" {
		t.Errorf("patched = %s", out)
	}
	if _, n, _ := m.Apply(obj, "apps", "deployments", "dev", "web-1", nil); n != 0 {
		t.Errorf("rules matched in another namespace: %d", n)
	}
	// A patch that cannot apply is an error naming the rule.
	bad, _ := ParseModifiers([]byte("version: v1\nresourceModifierRules:\n- conditions: {groupResource: x}\n  patches: [{operation: remove, path: /nope}]\n"))
	if _, _, err := bad.Apply([]byte(`{}`), "", "x", "", "a", nil); err == nil || !strings.Contains(err.Error(), "rule 1") {
		t.Errorf("err = %v", err)
	}
	for _, f := range []string{
		"version: v2\n",
		"version: v1\nresourceModifierRules:\n- conditions: {}\n  patches: [{operation: add, path: /a, value: 1}]\n",
		"version: v1\nresourceModifierRules:\n- conditions: {groupResource: x}\n",
		"version: v1\nresourceModifierRules:\n- conditions: {groupResource: x, resourceNameRegex: '('}\n  patches: [{operation: add, path: /a, value: 1}]\n",
		"version: v1\nresourceModifierRules:\n- conditions: {groupResource: x}\n  patches: [{operation: add, path: a, value: 1}]\n",
		"version: v1\nresourceModifierRules:\n- conditions: {groupResource: x}\n  mergePatches: [{patchData: '[1]'}]\n",
		"version: v1\nunknown: 1\n",
	} {
		if _, err := ParseModifiers([]byte(f)); err == nil {
			t.Errorf("accepted:\n%s", f)
		}
	}
}

func TestClean(t *testing.T) {
	obj := map[string]any{
		"metadata": map[string]any{"name": "a", "uid": "u", "resourceVersion": "1", "creationTimestamp": "2026-01-02T03:04:05Z",
			"managedFields": []any{}, "generation": int64(3), "annotations": map[string]any{"deployment.kubernetes.io/revision": "2"}},
		"spec":   map[string]any{"clusterIP": "10.0.0.1", "clusterIPs": []any{"10.0.0.1"}},
		"status": map[string]any{"x": 1},
	}
	created := Clean(obj, "", "services", false)
	if created.Year() != 2026 {
		t.Errorf("created = %v", created)
	}
	b, _ := json.Marshal(obj)
	if string(b) != `{"metadata":{"name":"a"},"spec":{}}` {
		t.Errorf("cleaned = %s", b)
	}
	headless := map[string]any{"spec": map[string]any{"clusterIP": "None"}, "status": map[string]any{}}
	Clean(headless, "", "services", true)
	if headless["spec"].(map[string]any)["clusterIP"] != "None" || headless["status"] == nil {
		t.Errorf("headless = %v", headless)
	}
}

func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"n"}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"X","metadata":{"name":"a","namespace":1}}`))
	f.Add([]byte(`{"metadata":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		it := &item{path: "namespaces/n/core/configmaps/a.json", namespace: "n", name: "a"}
		obj, err := decodeObject(b, it)
		if err == nil && obj == nil {
			t.Fatal("no object and no error")
		}
		if err != nil && !strings.Contains(err.Error(), it.path) {
			t.Fatalf("error %q does not name the file", err)
		}
		if err == nil {
			// What decodes must survive the restore's preparation.
			rs := &restore{o: RestoreOptions{NamespaceMapping: map[string]string{"n": "m"}}}
			it.obj = obj
			_, _, _ = rs.prepare(it)
		}
	})
}

func FuzzParseModifiers(f *testing.F) {
	f.Add([]byte("version: v1\nresourceModifierRules:\n- conditions: {groupResource: '*'}\n  patches: [{operation: replace, path: /spec/replicas, value: 1}]\n"))
	f.Add([]byte("version: v1\nresourceModifierRules:\n- conditions: {groupResource: x, labelSelector: {matchLabels: {a: b}}}\n  mergePatches: [{patchData: 'a: {b: c}'}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModifiers(b)
		if err != nil {
			return
		}
		_, _, _ = m.Apply([]byte(`{"metadata":{"name":"a"},"spec":{"replicas":2}}`), "apps", "deployments", "ns", "a", map[string]string{"a": "b"})
	})
}

func FuzzParseMapping(f *testing.F) {
	f.Add("a=b,c=d")
	f.Add("=,=")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMapping([]string{s})
		if err != nil {
			return
		}
		for _, to := range m {
			if validName(to) != nil {
				t.Fatalf("invalid target %q accepted", to)
			}
		}
	})
}

func TestParseDatabase(t *testing.T) {
	d, err := ParseDatabase("postgres:shop/pg:5432,user=app,secret=pg,db=a,db=b")
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != "postgres" || d.Namespace != "shop" || d.Service != "pg" || d.Port != "5432" || d.User != "app" ||
		d.Secret != "pg" || d.Key != "password" || len(d.Databases) != 2 || d.Dir() != "databases/shop/pg" {
		t.Errorf("%+v", d)
	}
	for _, bad := range []string{"", "postgres", "mysql:a/b", "postgres:a", "postgres:A/b", "postgres:a/b,x=1", "postgres:a/b,user", "postgres:a/../b"} {
		if _, err := ParseDatabase(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseDatabase(f *testing.F) {
	f.Add("postgres:shop/pg:5432,user=app,secret=pg,key=pw,db=a")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDatabase(s)
		if err != nil {
			return
		}
		if validName(d.Namespace) != nil || validName(d.Service) != nil || strings.Contains(d.Dir(), "..") {
			t.Fatalf("accepted %q as %+v", s, d)
		}
	})
}
