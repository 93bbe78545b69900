package operator

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// cliFlags mirrors how `bunker backup kubernetes` and `bunker restore
// kubernetes` (internal/cli/cmd_kubernetes.go) declare the flags job mode
// passes: the list flags split at commas, --tag is repeated and split at
// commas.
type cliFlags struct {
	inclNS, exclNS, inclRes, exclRes, mapping []string
	tags                                      []string
	selector, cluster, existing               string
	volumes, dryRun                           bool
	fs                                        *pflag.FlagSet
}

func parseCLI(t *testing.T, args []string) *cliFlags {
	t.Helper()
	f := &cliFlags{fs: pflag.NewFlagSet("bunker", pflag.ContinueOnError)}
	fl := f.fs
	fl.StringSliceVar(&f.inclNS, "include-namespaces", nil, "")
	fl.StringSliceVar(&f.exclNS, "exclude-namespaces", nil, "")
	fl.StringSliceVar(&f.inclRes, "include-resources", nil, "")
	fl.StringSliceVar(&f.exclRes, "exclude-resources", nil, "")
	fl.StringVarP(&f.selector, "selector", "l", "", "")
	fl.StringVar(&f.cluster, "cluster-resources", "auto", "")
	fl.StringArrayVar(&f.tags, "tag", nil, "")
	fl.BoolVar(&f.volumes, "volumes", false, "")
	fl.StringSliceVar(&f.mapping, "namespace-mapping", nil, "")
	fl.StringVar(&f.existing, "existing", "skip", "")
	fl.BoolVar(&f.dryRun, "dry-run", false, "")
	if err := fl.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return f
}

// splitTags is what the CLI does with --tag values.
func splitTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		for _, p := range strings.Split(t, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// specPatterns are the CRD's patterns for the values that reach a Job's
// command line, by field.
func specPatterns(t testing.TB) map[string]*regexp.Regexp {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*regexp.Regexp{}
	for _, crd := range crds {
		if crd.Spec.Names.Kind != "Backup" && crd.Spec.Names.Kind != "Restore" {
			continue
		}
		spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
		for name, p := range spec.Properties {
			var s *apiextensionsv1.JSONSchemaProps
			switch {
			case p.Items != nil && p.Items.Schema != nil:
				s = p.Items.Schema
			case p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil:
				s = p.AdditionalProperties.Schema
			default:
				s = &p
			}
			if s.Pattern != "" {
				out[name] = regexp.MustCompile(s.Pattern)
			}
		}
	}
	for _, f := range []string{"includeNamespaces", "excludeNamespaces", "includeResources", "excludeResources", "tags", "snapshot", "namespaceMapping"} {
		if out[f] == nil {
			t.Fatalf("the CRDs have no pattern for %s", f)
		}
	}
	return out
}

func TestJobArgs(t *testing.T) {
	spec := v1alpha1.BackupSpec{Repository: "r",
		Selection: v1alpha1.Selection{IncludeNamespaces: []string{"a", "b*"}, LabelSelector: "x in (1,2)"},
		Volumes:   true, IncludeClusterResources: ptr.To(false)}
	args := BackupArgs(spec, []string{"t1", "bunker.dev/backup=ns/n/uid"})
	f := parseCLI(t, args[2:])
	if !slices.Equal(f.inclNS, []string{"a", "b*"}) || f.selector != "x in (1,2)" || !f.volumes || f.cluster != "off" ||
		!slices.Equal(splitTags(f.tags), []string{"t1", "bunker.dev/backup=ns/n/uid"}) {
		t.Errorf("parsed %+v from %q", f, args)
	}
	for _, tc := range []struct {
		name    string
		attempt int32
		want    string
	}{
		{"nightly", 1, "bunker-backup-nightly-1"},
		{"a.b", 2, "bunker-backup-a-b-2"},
		{strings.Repeat("x", 60), 12, "bunker-backup-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-"},
	} {
		got := jobName(kindBackup, tc.name, tc.attempt)
		if !strings.HasPrefix(got, tc.want) || len(got) > 63 || len(validation.IsDNS1123Label(got)) > 0 {
			t.Errorf("jobName(%q, %d) = %q", tc.name, tc.attempt, got)
		}
	}
	if jobName(kindBackup, strings.Repeat("x", 60)+"a", 1) == jobName(kindBackup, strings.Repeat("x", 60)+"b", 1) {
		t.Errorf("long names collide")
	}
}

// FuzzJobArgs checks that whatever the API server admits into a Backup
// or Restore reaches the CLI in a Job unchanged: no value becomes another
// flag, is split, or is lost.
func FuzzJobArgs(f *testing.F) {
	f.Add("shop", "deployments.apps", "app=web,tier!=db", "nightly", "old", "new", "latest", "restore-0", true)
	f.Add("kube-*", "*.cert-manager.io", "--volumes", "--tag=x", "a", "b", "0123abcd", "x", false)
	f.Add("[a-c]?", "Secret", "", "é", "a-b", "c", "latest", strings.Repeat("n", 80), true)
	patterns := specPatterns(f)
	f.Fuzz(func(t *testing.T, ns, res, selector, tag, from, to, snap, name string, flag bool) {
		admit := func(field, v string) bool { return patterns[field].MatchString(v) }
		if !admit("includeNamespaces", ns) || !admit("includeResources", res) || !admit("tags", tag) ||
			!admit("snapshot", snap) || !admit("namespaceMapping", to) || len(validation.IsDNS1123Label(from)) > 0 ||
			len(selector) > 1024 {
			return
		}
		if len(validation.IsDNS1123Subdomain(name)) > 0 {
			name = "n" // the operator's own tag holds an object name
		}
		spec := v1alpha1.BackupSpec{Repository: "r", Selection: v1alpha1.Selection{
			IncludeNamespaces: []string{ns, ns}, ExcludeNamespaces: []string{ns},
			IncludeResources: []string{res}, ExcludeResources: []string{res, res}, LabelSelector: selector,
		}, Volumes: flag, IncludeClusterResources: ptr.To(flag), Tags: []string{tag}}
		tags := append(slices.Clone(spec.Tags), "bunker.dev/backup=ns/"+name+"/uid")
		args := BackupArgs(spec, tags)
		if !slices.Equal(args[:2], []string{"backup", "kubernetes"}) {
			t.Fatalf("args %q", args)
		}
		p := parseCLI(t, args[2:])
		want := "off"
		if flag {
			want = "on"
		}
		if !slices.Equal(p.inclNS, spec.IncludeNamespaces) || !slices.Equal(p.exclNS, spec.ExcludeNamespaces) ||
			!slices.Equal(p.inclRes, spec.IncludeResources) || !slices.Equal(p.exclRes, spec.ExcludeResources) ||
			p.selector != selector || p.volumes != flag || p.cluster != want || p.fs.NArg() != 0 {
			t.Fatalf("backup args %q parse to %+v", args, p)
		}
		if got := splitTags(p.tags); !slices.Equal(got, tags) {
			t.Fatalf("tags %q parse to %q", tags, got)
		}

		rspec := v1alpha1.RestoreSpec{Repository: "r", Snapshot: snap,
			Selection:        v1alpha1.Selection{IncludeNamespaces: []string{ns}, LabelSelector: selector},
			NamespaceMapping: map[string]v1alpha1.NamespaceName{from: v1alpha1.NamespaceName(to), "x": "y"},
			DryRun:           flag}
		args = RestoreArgs(rspec, snap, nil)
		p = parseCLI(t, args[2:])
		mapping := map[string]v1alpha1.NamespaceName{}
		for _, kv := range p.mapping {
			k, v, _ := strings.Cut(kv, "=")
			mapping[k] = v1alpha1.NamespaceName(v)
		}
		if !maps.Equal(mapping, rspec.NamespaceMapping) || p.selector != selector || p.dryRun != flag ||
			p.existing != "skip" || p.fs.NArg() != 1 || p.fs.Arg(0) != snap {
			t.Fatalf("restore args %q parse to %+v (args %q)", args, p, p.fs.Args())
		}
	})
}
