package testsrv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// KubeServer is an etcd and a kube-apiserver started by Kube. There is no
// controller-manager, scheduler or kubelet: objects are stored and served,
// but Deployments get no Pods and deleting a namespace never finishes.
type KubeServer struct {
	URL        string // https://127.0.0.1:PORT
	Token      string // a bearer token of a system:masters user
	CAFile     string // the CA that signed the serving certificate
	Kubeconfig string // a kubeconfig file for URL, CAFile and Token
	Dir        string
	Etcd       *Process
	APIServer  *Process

	t       testing.TB
	bin     string
	args    []string
	caPEM   []byte
	etcdURL string
}

// Kube starts etcd and kube-apiserver on free loopback ports in a
// temporary directory and stops them when the test ends. It skips the
// test (or fails it under BUNKER_REQUIRE_SERVERS=1) when etcd or
// kube-apiserver is missing; scripts/tools.sh installs both.
func Kube(t testing.TB) *KubeServer {
	t.Helper()
	etcdBin := Tool(t, "etcd", "")
	apiBin := Tool(t, "kube-apiserver", "")
	dir := t.TempDir()
	k := &KubeServer{Dir: dir, t: t, bin: apiBin}

	clientPort, peerPort := FreePort(t, 0), FreePort(t, 0)
	k.etcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd := exec.Command(etcdBin, "--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+k.etcdURL, "--advertise-client-urls="+k.etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--log-level=error",
		"--quota-backend-bytes=4294967296", "--unsafe-no-fsync")
	etcd.Env = append(testutil.CleanEnviron(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	k.Etcd = Start(t, "etcd", etcd)
	k.Etcd.WaitFor(t, 30*time.Second, func(ctx context.Context) bool {
		return httpOK(ctx, nil, k.etcdURL+"/health", "")
	})

	k.writeCredentials(t)
	port := FreePort(t, 0)
	k.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	k.writeKubeconfig(t)
	k.args = []string{
		"--etcd-servers=" + k.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--max-requests-inflight=2000", "--max-mutating-requests-inflight=1000",
		"--enable-priority-and-fairness=false",
		"--v=0",
	}
	k.startAPIServer(t)
	return k
}

// startAPIServer starts kube-apiserver with k.args and waits until it is
// ready.
func (k *KubeServer) startAPIServer(t testing.TB) {
	t.Helper()
	cmd := exec.Command(k.bin, k.args...)
	cmd.Dir = k.Dir
	k.APIServer = Start(t, "kube-apiserver", cmd)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(k.caPEM)
	k.APIServer.WaitFor(t, 90*time.Second, func(ctx context.Context) bool {
		return httpOK(ctx, pool, k.URL+"/readyz", k.Token)
	})
}

// Config returns a client configuration for the server, without
// client-side rate limits.
func (k *KubeServer) Config() *rest.Config {
	return &rest.Config{
		Host:            k.URL,
		BearerToken:     k.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: k.caPEM},
		QPS:             -1,
	}
}

// writeCredentials writes a CA and serving certificate for 127.0.0.1, a
// service-account signing key, a token file and a kubeconfig.
func (k *KubeServer) writeCredentials(t testing.TB) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bunker test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	k.Token = hex.EncodeToString(tok)
	k.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	k.CAFile = filepath.Join(k.Dir, "ca.crt")
	k.Kubeconfig = filepath.Join(k.Dir, "kubeconfig")
	files := map[string][]byte{
		"ca.crt":      k.caPEM,
		"serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"tokens.csv":  []byte(k.Token + ",admin,admin-uid,\"system:masters\"\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(k.Dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// writeKubeconfig writes the kubeconfig file (context "test").
func (k *KubeServer) writeKubeconfig(t testing.TB) {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, k.URL, k.CAFile, k.Token)
	if err := os.WriteFile(k.Kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func httpOK(ctx context.Context, pool *x509.CertPool, url, token string) bool {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
