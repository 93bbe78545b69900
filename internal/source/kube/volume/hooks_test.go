package volume

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseHook(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Hook
		err  string
	}{
		{in: "app/db=sync", want: Hook{Namespace: "app", Pod: "db", Command: []string{"sync"}}},
		{in: " app/db-0:mysql = mysql -e 'FLUSH TABLES WITH READ LOCK' ", want: Hook{Namespace: "app", Pod: "db-0", Container: "mysql",
			Command: []string{"mysql", "-e", "FLUSH TABLES WITH READ LOCK"}}},
		{in: `ns/p=sh -c "echo \"hi\" \\ there" a\ b '' x=y`, want: Hook{Namespace: "ns", Pod: "p",
			Command: []string{"sh", "-c", `echo "hi" \ there`, "a b", "", "x=y"}}},
		{in: `ns/p=["/bin/sh","-c","fsfreeze -f /data && echo 'ok'"]`, want: Hook{Namespace: "ns", Pod: "p",
			Command: []string{"/bin/sh", "-c", "fsfreeze -f /data && echo 'ok'"}}},
		{in: "ns/p.with.dots=a\\\nb", want: Hook{Namespace: "ns", Pod: "p.with.dots", Command: []string{"ab"}}},
		{in: "ns/p", err: "want namespace/pod"},
		{in: "p=sync", err: "want namespace/pod"},
		{in: "ns/p=", err: "empty command"},
		{in: "ns/p=  ", err: "empty command"},
		{in: "ns/p=[]", err: "empty command"},
		{in: "ns/p=[1]", err: "not a JSON array of strings"},
		{in: `ns/p=[""]`, err: "no command"},
		{in: "ns/p:=sync", err: "empty container name"},
		{in: "ns/p:a:b=sync", err: "container name"},
		{in: "NS/p=sync", err: "namespace"},
		{in: "ns/P_Q=sync", err: "pod name"},
		{in: "/p=sync", err: "namespace"},
		{in: "ns/=sync", err: "pod name"},
		{in: "ns/p=echo 'unterminated", err: "unterminated '"},
		{in: `ns/p=echo "unterminated`, err: `unterminated "`},
		{in: `ns/p=echo \`, err: "backslash"},
		{in: "ns/p=[\"a\\u0000b\"]", err: "NUL"},
	} {
		h, err := ParseHook(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseHook(%q) = %+v, %v; want error with %q", tc.in, h, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(h, tc.want) {
			t.Errorf("ParseHook(%q) = %+v, %v; want %+v", tc.in, h, err, tc.want)
		}
	}
}

// TestParseHookKeepsSecrets: errors about a hook do not repeat its
// command, which may hold a password.
func TestParseHookKeepsSecrets(t *testing.T) {
	for _, in := range []string{"NS/p=mysql -pS3CRET", "ns/p=mysql -pS3CRET 'x", "ns/p=[\"-pS3CRET\""} {
		if _, err := ParseHook(in); err == nil || strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestHooksFromAnnotations(t *testing.T) {
	pre := func(f string) string { return HookAnnotation(PhasePre, f) }
	post := func(f string) string { return HookAnnotation(PhasePost, f) }
	for _, tc := range []struct {
		ann  map[string]string
		want []Hook
		err  string
	}{
		{ann: nil},
		{ann: map[string]string{"other": "x"}},
		{ann: map[string]string{pre("command"): "sync", pre("on-error"): "FAIL", post("command"): `["echo"]`, post("timeout"): "1m30s", post("on-error"): " continue"},
			want: []Hook{{Namespace: "ns", Pod: "p", Command: []string{"sync"}, OnError: OnErrorFail, Phase: PhasePre},
				{Namespace: "ns", Pod: "p", Command: []string{"echo"}, Timeout: 90 * time.Second, OnError: OnErrorContinue, Phase: PhasePost}}},
		{ann: map[string]string{pre("container"): "db"}, err: "without " + pre("command")},
		{ann: map[string]string{pre("command"): ""}, err: "empty command"},
		{ann: map[string]string{pre("command"): "x", pre("timeout"): "-1s"}, err: "not positive"},
		{ann: map[string]string{pre("command"): "x", pre("timeout"): "10"}, err: "missing unit"},
		{ann: map[string]string{pre("command"): "x", pre("on-error"): "ignore"}, err: "use Fail or Continue"},
		{ann: map[string]string{post("command"): "x", post("container"): "Bad_Name"}, err: "container name"},
	} {
		hs, err := HooksFromAnnotations("ns", "p", tc.ann)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "pod ns/p") {
				t.Errorf("%v: %+v, %v; want error with %q", tc.ann, hs, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(hs, tc.want) {
			t.Errorf("%v: %+v, %v; want %+v", tc.ann, hs, err, tc.want)
		}
	}
}

func TestMatchNode(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a", "rank": "5"}}}
	req := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: vals}
	}
	for _, tc := range []struct {
		terms []corev1.NodeSelectorTerm
		want  bool
	}{
		{nil, false},
		{[]corev1.NodeSelectorTerm{{}}, false},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpIn, "a", "b")}}}, true},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpNotIn, "a")}}}, false},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("gpu", corev1.NodeSelectorOpNotIn, "a")}}}, true},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpExists), req("gpu", corev1.NodeSelectorOpDoesNotExist)}}}, true},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpExists), req("gpu", corev1.NodeSelectorOpExists)}}}, false},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("rank", corev1.NodeSelectorOpGt, "4"), req("rank", corev1.NodeSelectorOpLt, "6")}}}, true},
		{[]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpGt, "4")}}}, false},
		{[]corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "n1")}}}, true},
		{[]corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "n2")}},
			{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", corev1.NodeSelectorOpIn, "a")}}}, true},
		{[]corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("spec.unschedulable", corev1.NodeSelectorOpIn, "n1")}}}, false},
	} {
		if got := matchNode(&corev1.NodeSelector{NodeSelectorTerms: tc.terms}, node); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.terms, got, tc.want)
		}
	}
}

func TestNamePrefix(t *testing.T) {
	if got := namePrefix("bunker-", "data"); got != "bunker-data-" {
		t.Error(got)
	}
	long := namePrefix("bunker-clone-", strings.Repeat("a", 40)+"-"+strings.Repeat("b", 200))
	if len(long)+5 > 63 || strings.HasSuffix(long, "--") {
		t.Errorf("%q (%d)", long, len(long))
	}
}
