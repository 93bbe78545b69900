package cli_test

import (
	"strings"
	"testing"
)

// TestRepositoryPolicyFlags: --allow-schemes, --allow-hosts and
// --no-ambient-credentials (and their variables, which the operator sets
// in a tenant's Job) refuse what they do not allow, before any contact.
func TestRepositoryPolicyFlags(t *testing.T) {
	e := initRepo(t)
	e.mustRun("--allow-schemes", "local", "snapshots")
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--allow-schemes", "s3,rest", "snapshots"}, `repository policy refuses scheme "local"`},
		{map[string]string{"BUNKER_ALLOW_SCHEMES": "s3"}, []string{"snapshots"}, `repository policy refuses scheme "local"`},
		{map[string]string{"BUNKER_NO_AMBIENT_CREDENTIALS": "1"}, []string{"-r", "s3:https://s3.example.net/bucket", "snapshots"}, "AWS_ACCESS_KEY_ID"},
		{nil, []string{"--no-ambient-credentials", "-r", "gs:bucket:/", "snapshots"}, "identity"},
		{nil, []string{"--allow-hosts", "*.example.net", "-r", "rest:http://127.0.0.1:1/repo", "snapshots"}, `refuses host "127.0.0.1"`},
		{nil, []string{"--allow-hosts", "http://x", "snapshots"}, "--allow-schemes/--allow-hosts"},
	}
	for _, tc := range cases {
		for k, v := range tc.env {
			e.env[k] = v
		}
		r := e.run(tc.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, tc.want) {
			t.Errorf("%v %v: exit %d, want an error saying %q:\n%s", tc.env, tc.args, r.Code, tc.want, r)
		}
		for k := range tc.env {
			delete(e.env, k)
		}
	}
}
