package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	krest "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// tenantSuite is the cluster of TestTenantSuite: an API server with the
// shipped RBAC, an operator running as its service account, a Bunker
// REST server holding one private repository per tenant, and a host the
// tenants' repositories may not reach.
type tenantSuite struct {
	t       *testing.T
	k       *testsrv.KubeServer
	admin   client.Client
	served  *servedCLI
	dir     string // the REST server's directory
	markers []string
	// forbidden counts the requests the forbidden host received.
	forbidden     atomic.Int64
	forbiddenAddr string
}

const (
	attacker, victim = "team-a", "team-b"
	suiteAdminNS     = "bunker-system"
)

// TestTenantSuite is issue 15, acceptance 2: a user with only the
// documented tenant role (deploy/kubernetes/tenant.yaml, bound in its own
// namespace) and the usual rights of an application team there tries,
// across many generated objects, to read another namespace's Secrets and
// volume files, write outside its namespace, create cluster-scoped
// objects, run a command in the operator, and make the operator contact a
// host it may not. The operator runs with the shipped RBAC unchanged (as
// the bunker-operator service account, restore binding applied). Every
// attempt fails with a status that says why, the attacker's repository
// holds nothing of the victim's, the victim's repository is byte for byte
// what it was, and the victim's snapshot still restores.
func TestTenantSuite(t *testing.T) {
	s := newTenantSuite(t)
	ctx := t.Context()

	// The victim's data: a Secret, a volume file, and a kube-system
	// Secret, each holding a marker that must never reach the attacker.
	victimSecret, victimFile, systemSecret := s.marker("victim-secret"), s.marker("victim-file"), s.marker("kube-system-secret")
	s.create(s.admin, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: victim}, StringData: map[string]string{"password": victimSecret}})
	s.create(s.admin, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloud", Namespace: "kube-system"}, StringData: map[string]string{"key": systemSecret}})
	victimVol := filepath.Join(t.TempDir(), "victim-vol")
	writeFile(t, filepath.Join(victimVol, "secret.txt"), []byte(victimFile))
	s.volume(victim, "data", "pv-victim", victimVol)
	attackerVol := filepath.Join(t.TempDir(), "attacker-vol")
	writeFile(t, filepath.Join(attackerVol, "mine.txt"), []byte("the attacker's own file\n"))
	s.volume(attacker, "data", "pv-attacker", attackerVol)
	// The worst a binder could do: a claim of the attacker's bound to
	// the victim's volume (the volume's claimRef says otherwise).
	s.claim(attacker, "steal", "pv-victim")

	s.startOperator()
	alice, bob := s.tenant(attacker, "alice"), s.tenant(victim, "bob")

	// The victim backs up its namespace with its volume.
	bobRepo := s.repository(bob, victim, "main", "bob", nil)
	s.create(bob, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: victim},
		Spec: v1alpha1.BackupSpec{Repository: "main", Volumes: true}})
	if b := s.backupDone(victim, "nightly"); b.Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("the victim's Backup: %s: %s", b.Status.Phase, b.Status.Message)
	}
	victimBefore := s.tree(filepath.Join(s.dir, "bob"))

	// The attacker's repository, and in it a snapshot from elsewhere
	// (made by an admin of another cluster) holding a ClusterRoleBinding
	// that makes the attacker cluster-admin and objects of kube-system
	// and the victim's namespace.
	aliceRepo := s.repository(alice, attacker, "main", "alice", nil)
	plantedID := s.plantedSnapshot(aliceRepo)

	rnd := rand.New(rand.NewPCG(15, 2))
	var backups, backupsRefused, restores, restoresRefused, restored int
	var checks []func()

	// 1. The API server itself refuses what the role does not grant.
	s.rbacProbes(alice)

	// 2. Generated Backups selecting namespaces and cluster-scoped
	// objects.
	nss := []string{attacker, victim, "kube-system", suiteAdminNS, "default"}
	for i := range 30 {
		// Half the Backups stay inside (and must run), half reach out.
		attack := i%2 == 1
		var spec v1alpha1.BackupSpec
		spec.Repository = "main"
		for _, n := range nss {
			if (n == attacker || attack) && rnd.IntN(3) == 0 {
				spec.IncludeNamespaces = append(spec.IncludeNamespaces, n)
			}
		}
		if rnd.IntN(4) == 0 {
			spec.ExcludeNamespaces = []string{nss[rnd.IntN(len(nss))]}
		}
		switch rnd.IntN(3) {
		case 0:
			spec.IncludeClusterResources = ptr.To(attack)
		case 1:
			spec.IncludeClusterResources = ptr.To(false)
		}
		spec.Volumes = rnd.IntN(2) == 0
		refused := spec.IncludeClusterResources != nil && *spec.IncludeClusterResources
		for _, n := range spec.IncludeNamespaces {
			refused = refused || n != attacker
		}
		backups++
		if refused {
			backupsRefused++
		}
		name := fmt.Sprintf("gen-%02d", i)
		s.create(alice, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: attacker}, Spec: spec})
		checks = append(checks, func() {
			b := s.backupDone(attacker, name)
			switch {
			case refused && (b.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(b.Status.Message, "refused")):
				t.Errorf("Backup %s %+v: %s %q, want Failed saying what was refused", name, spec, b.Status.Phase, b.Status.Message)
			case !refused && b.Status.Phase != v1alpha1.BackupCompleted:
				t.Errorf("Backup %s %+v: %s %q, want Completed (confined to %s)", name, spec, b.Status.Phase, b.Status.Message, attacker)
			}
		})
	}

	// 3. Generated Restores of the planted snapshot and of the
	// attacker's own backups, mapping into other namespaces.
	targets := []string{attacker, attacker, victim, "kube-system", "default", "elsewhere"}
	for i := range 20 {
		attack := i%2 == 1
		spec := v1alpha1.RestoreSpec{Repository: "main", Snapshot: plantedID}
		if i%3 == 2 {
			spec.Snapshot = "latest"
		}
		from := map[string]bool{attacker: true}
		refused := false
		if i < 2 {
			// The first two map the planted snapshot's namespaces in
			// whole: their ConfigMaps land in the attacker's namespace,
			// its RoleBinding and ClusterRoleBinding do not.
			spec.NamespaceMapping = map[string]v1alpha1.NamespaceName{victim: attacker, "kube-system": attacker}
			from[victim], from["kube-system"] = true, true
			attack = false
		}
		for _, src := range []string{victim, "kube-system", attacker} {
			if i < 2 {
				break
			}
			if rnd.IntN(2) == 0 {
				continue
			}
			to := attacker
			if attack {
				to = targets[rnd.IntN(len(targets))]
			}
			if spec.NamespaceMapping == nil {
				spec.NamespaceMapping = map[string]v1alpha1.NamespaceName{}
			}
			spec.NamespaceMapping[src] = v1alpha1.NamespaceName(to)
			from[src] = true
			refused = refused || to != attacker
		}
		if rnd.IntN(2) == 0 {
			n := attacker
			if attack {
				n = nss[rnd.IntN(len(nss))]
			} else if len(spec.NamespaceMapping) > 0 {
				keys := slices.Sorted(maps.Keys(spec.NamespaceMapping))
				n = keys[rnd.IntN(len(keys))]
			}
			spec.IncludeNamespaces = []string{n}
			refused = refused || !from[n]
		}
		restores++
		if refused {
			restoresRefused++
		}
		name := fmt.Sprintf("gen-%02d", i)
		s.create(alice, &v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: attacker}, Spec: spec})
		checks = append(checks, func() {
			x := s.restoreDone(attacker, name)
			switch {
			case refused && (x.Status.Phase != v1alpha1.RestoreFailed || !strings.Contains(x.Status.Message, "refused")):
				t.Errorf("Restore %s %+v: %s %q, want Failed saying what was refused", name, spec, x.Status.Phase, x.Status.Message)
			case !refused && strings.Contains(x.Status.Message, "refused"):
				t.Errorf("Restore %s %+v: %s %q, want it run (confined to %s)", name, spec, x.Status.Phase, x.Status.Message, attacker)
			case !refused && x.Status.Phase == v1alpha1.RestoreCompleted:
				restored++
			}
		})
	}

	// 4. Repositories that would run a command in the operator, use its
	// files or identity, or reach a host the policy refuses; each with a
	// Backup that must fail the same way.
	pwned := filepath.Join(t.TempDir(), "pwned")
	forbidden := s.forbiddenAddr
	repos := []struct {
		name, url string
		env       map[string]string
		want      string
	}{
		{"cmd", aliceRepo, map[string]string{"BUNKER_PASSWORD": "", "BUNKER_PASSWORD_COMMAND": "touch " + pwned + "; echo x"}, "BUNKER_PASSWORD_COMMAND"},
		{"kubeconfig", aliceRepo, map[string]string{"KUBECONFIG": s.k.Kubeconfig}, "KUBECONFIG"},
		{"awsfile", aliceRepo, map[string]string{"AWS_SHARED_CREDENTIALS_FILE": "/root/.aws/credentials"}, "AWS_SHARED_CREDENTIALS_FILE"},
		{"sftpkey", aliceRepo, map[string]string{"BUNKER_SFTP_KEY": "/root/.ssh/id_ed25519"}, "BUNKER_SFTP_KEY"},
		{"noderoot", aliceRepo, map[string]string{"BUNKER_NODE_ROOT": "/"}, "BUNKER_NODE_ROOT"},
		{"sshagent", aliceRepo, map[string]string{"SSH_AUTH_SOCK": "/run/ssh-agent.sock"}, "SSH_AUTH_SOCK"},
		{"local", "/etc", nil, `scheme "local"`},
		{"local2", "local:" + s.dir + "/bob", nil, `scheme "local"`},
		{"resthost", "rest:http://alice@" + forbidden + "/alice/main", map[string]string{rest.EnvPassword: "alice-rest"}, "repository policy refuses"},
		{"s3host", "s3:http://" + forbidden + "/bucket", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAALICE", "AWS_SECRET_ACCESS_KEY": "alice-secret"}, "repository policy refuses"},
		{"azurehost", "azure:container:/", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://" + forbidden + "/a;"}, "repository policy refuses"},
		{"sftp", "sftp:alice@" + forbidden + ":/repo", nil, `scheme "sftp"`},
		{"metadata", "rest:http://169.254.169.254/latest/meta-data/", map[string]string{rest.EnvPassword: "alice-rest"}, "link-local"},
		{"ambient-s3", "s3:https://s3.amazonaws.com/bucket", nil, "AWS_ACCESS_KEY_ID"},
		{"ambient-gs", "gs:bucket:/", nil, "identity"},
		{"victim-repo", strings.Replace(aliceRepo, "/alice/", "/bob/", 1), nil, "not permitted"},
	}
	for _, r := range repos {
		env := map[string]string{rest.EnvPassword: "alice-rest", rest.EnvFingerprint: s.served.fingerprint}
		if r.env != nil {
			env = r.env
		}
		s.repositoryObject(alice, attacker, "x-"+r.name, r.url, env)
		s.create(alice, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "x-" + r.name, Namespace: attacker},
			Spec: v1alpha1.BackupSpec{Repository: "x-" + r.name}})
		checks = append(checks, func() {
			br := s.repositoryDone(attacker, "x-"+r.name)
			if br.Status.Phase != v1alpha1.RepositoryFailed || !strings.Contains(br.Status.Message, r.want) {
				t.Errorf("BackupRepository x-%s (%s): %s %q, want Failed saying %q", r.name, r.url, br.Status.Phase, br.Status.Message, r.want)
			}
			b := s.backupDone(attacker, "x-"+r.name)
			if b.Status.Phase != v1alpha1.BackupFailed {
				t.Errorf("Backup x-%s: %s %q, want Failed", r.name, b.Status.Phase, b.Status.Message)
			}
			for _, v := range r.env {
				if len(v) > 8 && (strings.Contains(br.Status.Message, v) || strings.Contains(b.Status.Message, v)) {
					t.Errorf("a status of x-%s shows a credential value", r.name)
				}
			}
		})
	}

	for _, c := range checks {
		c()
	}
	if restored == 0 {
		t.Error("no generated Restore completed: the suite tests refusals only")
	}
	var planted corev1.ConfigMap
	if err := s.admin.Get(ctx, client.ObjectKey{Namespace: attacker, Name: "planted"}, &planted); err != nil {
		t.Errorf("no Restore mapped a planted object into %s (%v): the suite tests refusals only", attacker, err)
	}
	t.Logf("%d generated Backups (%d refused), %d Restores (%d refused, %d completed), %d repositories refused",
		backups, backupsRefused, restores, restoresRefused, restored, len(repos))

	// Nothing ran, nothing was contacted, nothing was written outside.
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a tenant's command ran in the operator")
	}
	if n := s.forbidden.Load(); n != 0 {
		t.Errorf("the forbidden host got %d requests", n)
	}
	s.nothingOutside(ctx)

	// The attacker's repository holds none of the victim's bytes.
	aliceEnv := s.tenantEnv(aliceRepo, "alice")
	for _, sn := range aliceEnv.snapshots() {
		id, _ := sn["id"].(string)
		out := filepath.Join(t.TempDir(), "r")
		aliceEnv.mustRun("restore", id, "--target", out)
		s.noMarkers(out, "the attacker's snapshot "+id[:12])
	}

	// The victim's repository is unchanged and restores.
	if after := s.tree(filepath.Join(s.dir, "bob")); !maps.Equal(victimBefore, after) {
		t.Errorf("the victim's repository changed: %d objects before, %d after", len(victimBefore), len(after))
	}
	bobEnv := s.tenantEnv(bobRepo, "bob")
	bobEnv.mustRun("check", "--read-data")
	out := filepath.Join(t.TempDir(), "bob")
	bobEnv.mustRun("restore", "latest", "--target", out)
	if b, err := os.ReadFile(filepath.Join(out, "volumes", victim, "data", "secret.txt")); err != nil || string(b) != victimFile {
		t.Errorf("the victim's volume file in its own snapshot: %q, %v", b, err)
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newTenantSuite(t *testing.T) *tenantSuite {
	k := testsrv.Kube(t)
	ctx := t.Context()
	must(t, operator.InstallCRDs(ctx, k.Config(), time.Minute))
	admin, err := client.New(k.Config(), client.Options{Scheme: operator.Scheme()})
	must(t, err)
	s := &tenantSuite{t: t, k: k, admin: admin}

	// The shipped manifests, unchanged.
	for _, f := range []string{"namespace.yaml", "rbac.yaml", "restore-binding.yaml", "tenant.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", f))
		must(t, err)
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			var obj map[string]any
			must(t, yaml.Unmarshal(doc, &obj))
			if len(obj) == 0 {
				continue
			}
			s.create(admin, &unstructured.Unstructured{Object: obj})
		}
	}
	for _, ns := range []string{attacker, victim} {
		s.create(admin, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}

	// The repositories' server: one private repository per user.
	s.dir = t.TempDir()
	s.served = serveCLI(t, nil, "--path", s.dir, "--private-repos",
		"--htpasswd", htpasswdFile(t, map[string]string{"alice": "alice-rest", "bob": "bob-rest"}))

	// A host the policy does not allow: another loopback address.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal service data", http.StatusInternalServerError)
	}), ReadHeaderTimeout: 5 * time.Second}
	// Every connection counts, HTTP or not (SFTP).
	go func() { _ = srv.Serve(&countingListener{Listener: ln, n: &s.forbidden}) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.forbiddenAddr = ln.Addr().String()
	return s
}

func (s *tenantSuite) marker(what string) string {
	m := fmt.Sprintf("MARKER-%s-%d", what, time.Now().UnixNano())
	s.markers = append(s.markers, m)
	return m
}

func (s *tenantSuite) create(c client.Client, obj client.Object) {
	s.t.Helper()
	if err := c.Create(s.t.Context(), obj); err != nil {
		s.t.Fatalf("create %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// volume makes a hostPath volume at dir claimed by ns/claim, bound.
func (s *tenantSuite) volume(ns, claim, pv, dir string) {
	s.create(s.admin, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pv},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:       "manual",
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
			ClaimRef:               &corev1.ObjectReference{Namespace: ns, Name: claim},
		}})
	s.claim(ns, claim, pv)
}

// claim makes ns/name a claim bound to pv, as a binder would mark it.
func (s *tenantSuite) claim(ns, name, pv string) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("manual"), VolumeName: pv,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}}
	s.create(s.admin, pvc)
	pvc.Status.Phase = corev1.ClaimBound
	must(s.t, s.admin.Status().Update(s.t.Context(), pvc))
}

// tenant binds the tenant role and an application team's usual rights
// in ns to user, and returns a client acting as that user.
func (s *tenantSuite) tenant(ns, user string) client.Client {
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	s.create(s.admin, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bunker-tenant", Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bunker-tenant"}, Subjects: subject})
	s.create(s.admin, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "persistentvolumeclaims", "pods", "services"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}}})
	s.create(s.admin, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "app"}, Subjects: subject})
	cfg := krest.CopyConfig(s.k.Config())
	cfg.Impersonate = krest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	must(s.t, err)
	return c
}

// startOperator runs "bunker operator" in this process as the
// bunker-operator service account, with the tenants' repositories
// allowed to reach 127.0.0.1 only. Its own environment holds credentials
// a tenant must never borrow.
func (s *tenantSuite) startOperator() {
	t := s.t
	cs, err := kubernetes.NewForConfig(s.k.Config())
	must(t, err)
	tok, err := cs.CoreV1().ServiceAccounts(suiteAdminNS).CreateToken(t.Context(), "bunker-operator",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	must(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeFile(t, kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: operator, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: operator}}]
current-context: c
`, s.k.URL, s.k.CAFile, tok.Status.Token)))
	home := t.TempDir()
	env := map[string]string{
		"HOME": home, "BUNKER_CACHE_DIR": filepath.Join(home, "cache"), "POD_NAMESPACE": suiteAdminNS,
		"AWS_ACCESS_KEY_ID": "AKIAOPERATOR", "AWS_SECRET_ACCESS_KEY": "operator-secret",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr serveOutput
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() {
		done <- app.Run(ctx, []string{"operator", "--kubeconfig", kubeconfig, "--tenant-hosts", "127.0.0.1",
			"--metrics-addr", "0", "--health-addr", "0", "--concurrency", "2"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("the operator did not stop within 60 s")
		}
		if t.Failed() {
			t.Logf("operator log:\n%s", clip(stderr.String(), 8000))
		}
	})
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// repository initialises a repository for user on the REST server and
// makes it the BackupRepository ns/name; it returns the location.
func (s *tenantSuite) repository(c client.Client, ns, name, user string, env map[string]string) string {
	loc := "rest:https://" + user + "@" + s.served.addr + "/" + user + "/" + name
	e := s.tenantEnv(loc, user)
	e.mustRun("--insecure-kdf-for-tests", "init")
	if env == nil {
		env = map[string]string{rest.EnvPassword: user + "-rest", rest.EnvFingerprint: s.served.fingerprint}
	}
	s.repositoryObject(c, ns, name, loc, env)
	return loc
}

// repositoryObject creates the BackupRepository ns/name for loc with its
// password and env Secrets.
func (s *tenantSuite) repositoryObject(c client.Client, ns, name, loc string, env map[string]string) {
	s.create(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-password", Namespace: ns},
		StringData: map[string]string{"password": testPassword}})
	spec := v1alpha1.BackupRepositorySpec{URL: loc, PasswordSecretRef: v1alpha1.SecretKeyRef{Name: name + "-password"}}
	if len(env) > 0 {
		s.create(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-env", Namespace: ns}, StringData: env})
		spec.EnvSecretRef = &v1alpha1.SecretRef{Name: name + "-env"}
	}
	s.create(c, &v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec})
}

// tenantEnv runs the CLI against loc as user would.
func (s *tenantSuite) tenantEnv(loc, user string) *repoEnv {
	return remoteEnv(s.t, remote{loc: loc, env: map[string]string{
		rest.EnvPassword: user + "-rest", rest.EnvFingerprint: s.served.fingerprint}})
}

// plantedSnapshot saves into the attacker's repository, as an admin of
// another cluster would, a ClusterRoleBinding making the attacker
// cluster-admin and ConfigMaps of kube-system and the victim's
// namespace, then removes them from this cluster; it returns the
// snapshot ID.
func (s *tenantSuite) plantedSnapshot(loc string) string {
	t := s.t
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "planted-alice-admin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}
	cms := []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: "kube-system"}, Data: map[string]string{"x": "planted"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: victim}, Data: map[string]string{"x": "planted"}},
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "planted-admin", Namespace: victim},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}
	s.create(s.admin, crb)
	s.create(s.admin, rb)
	for _, cm := range cms {
		s.create(s.admin, cm)
	}
	e := s.tenantEnv(loc, "alice")
	e.env["KUBECONFIG"] = s.k.Kubeconfig
	sum := e.mustRun("--json", "backup", "kubernetes", "--include-namespaces", "kube-system,"+victim,
		"--include-resources", "configmaps,clusterrolebindings,rolebindings", "--cluster-resources", "on").Message(t, "summary")
	id, _ := sum["snapshot_id"].(string)
	if id == "" {
		t.Fatalf("planted backup: no snapshot ID in %v", sum)
	}
	// The planted snapshot holds what it should, or the test tests nothing.
	ls := e.mustRun("ls", id).Stdout
	for _, want := range []string{"planted-alice-admin", "kube-system", victim} {
		if !strings.Contains(ls, want) {
			t.Fatalf("planted snapshot lacks %s:\n%s", want, ls)
		}
	}
	must(t, s.admin.Delete(t.Context(), crb))
	must(t, s.admin.Delete(t.Context(), rb))
	for _, cm := range cms {
		must(t, s.admin.Delete(t.Context(), cm))
	}
	return id
}

// rbacProbes: the documented tenant role grants nothing outside the
// tenant's namespace.
func (s *tenantSuite) rbacProbes(c client.Client) {
	t := s.t
	ctx := t.Context()
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
	forbidden("get the victim's Secret", c.Get(ctx, client.ObjectKey{Namespace: victim, Name: "db"}, &corev1.Secret{}))
	forbidden("list kube-system Secrets", c.List(ctx, &corev1.SecretList{}, client.InNamespace("kube-system")))
	forbidden("create a Backup in the victim's namespace", c.Create(ctx, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: victim}, Spec: v1alpha1.BackupSpec{Repository: "main"}}))
	forbidden("create a Backup in the admin namespace", c.Create(ctx, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: suiteAdminNS}, Spec: v1alpha1.BackupSpec{Repository: "main"}}))
	forbidden("create a ClusterRoleBinding", c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}))
	forbidden("bind bunker-restore in its namespace", c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: attacker},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bunker-restore"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}))
	b := &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "forged-status", Namespace: attacker}, Spec: v1alpha1.BackupSpec{Repository: "main"}}
	s.create(c, b)
	b.Status.Phase, b.Status.SnapshotID = v1alpha1.BackupCompleted, strings.Repeat("0", 64)
	forbidden("write a Backup's status", c.Status().Update(ctx, b))
	forbidden("create a pod in the operator's namespace", c.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: suiteAdminNS}}))
}

// nothingOutside: after the attacks, nothing planted exists in this
// cluster and the attacker has no more rights than before.
func (s *tenantSuite) nothingOutside(ctx context.Context) {
	t := s.t
	if err := s.admin.Get(ctx, client.ObjectKey{Name: "planted-alice-admin"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the planted ClusterRoleBinding: %v, want not found", err)
	}
	for _, ns := range []string{attacker, victim} {
		err := s.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "planted-admin"}, &rbacv1.RoleBinding{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("RoleBinding %s/planted-admin: %v, want not found: a Restore granted the tenant a role", ns, err)
		}
	}
	for _, ns := range []string{"kube-system", victim, "default", "elsewhere"} {
		err := s.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "planted"}, &corev1.ConfigMap{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap %s/planted: %v, want not found: a Restore wrote outside its namespace", ns, err)
		}
	}
	if err := s.admin.Get(ctx, client.ObjectKey{Name: "elsewhere"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace elsewhere: %v, want not found", err)
	}
	cs, err := kubernetes.NewForConfig(func() *krest.Config {
		c := krest.CopyConfig(s.k.Config())
		c.Impersonate = krest.ImpersonationConfig{UserName: "alice"}
		return c
	}())
	must(t, err)
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: "kube-system", Verb: "get", Resource: "secrets"}}}, metav1.CreateOptions{})
	must(t, err)
	if r.Status.Allowed {
		t.Error("after the attacks the attacker may read kube-system Secrets")
	}
}

// noMarkers fails if any file below dir holds a marker.
func (s *tenantSuite) noMarkers(dir, what string) {
	t := s.t
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range s.markers {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds %s in %s", what, m, strings.TrimPrefix(p, dir))
			}
		}
		return nil
	})
	must(t, err)
}

// tree returns the hash of every file below dir by relative path.
func (s *tenantSuite) tree(dir string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, dir)] = hex.EncodeToString(sum[:])
		return nil
	})
	must(s.t, err)
	return out
}

// waitFor polls get until done says the object is finished.
func (s *tenantSuite) waitFor(what string, get func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !get() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not finished within 3 minutes", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *tenantSuite) backupDone(ns, name string) *v1alpha1.Backup {
	var b v1alpha1.Backup
	s.waitFor("Backup "+ns+"/"+name, func() bool {
		must(s.t, s.admin.Get(s.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &b))
		return slices.Contains([]v1alpha1.BackupPhase{v1alpha1.BackupCompleted, v1alpha1.BackupFailed}, b.Status.Phase)
	})
	return &b
}

func (s *tenantSuite) restoreDone(ns, name string) *v1alpha1.Restore {
	var x v1alpha1.Restore
	s.waitFor("Restore "+ns+"/"+name, func() bool {
		must(s.t, s.admin.Get(s.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &x))
		return slices.Contains([]v1alpha1.RestorePhase{v1alpha1.RestoreCompleted, v1alpha1.RestoreFailed, v1alpha1.RestorePartiallyFailed}, x.Status.Phase)
	})
	return &x
}

func (s *tenantSuite) repositoryDone(ns, name string) *v1alpha1.BackupRepository {
	var r v1alpha1.BackupRepository
	s.waitFor("BackupRepository "+ns+"/"+name, func() bool {
		must(s.t, s.admin.Get(s.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &r))
		return r.Status.Phase != ""
	})
	return &r
}
