package testsrv

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer is an OpenSSH sshd started by SSHD, serving SFTP
// (internal-sftp) on a loopback port. The current user logs in with
// KeyFile.
type SSHServer struct {
	Host string // 127.0.0.1
	Port int
	User string // the current user
	// KeyFile is an unencrypted ed25519 private key (OpenSSH format)
	// that may log in; Key is its signer.
	KeyFile string
	Key     ssh.Signer
	// KnownHosts is a known_hosts file that lists the server's Ed25519
	// host key only, although the server also has an ECDSA host key
	// (which Go clients prefer by default).
	KnownHosts string
	// HostKeys are the server's public host keys, Ed25519 first.
	HostKeys []ssh.PublicKey
	// Dir is a temporary directory for the test's use (repositories),
	// readable and writable by User.
	Dir string

	bin, conf, authorized string
	mu                    sync.Mutex
	proc                  *Process
}

// Addr is "host:port".
func (s *SSHServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SSHD starts an sshd for the test and stops it (and the sessions it
// forked) when the test ends. It skips the test (or fails it under
// BUNKER_REQUIRE_SERVERS=1) when sshd is not installed.
func SSHD(t testing.TB) *SSHServer {
	t.Helper()
	bin := LookTool("sshd", "")
	if bin == "" {
		if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
			bin = "/usr/sbin/sshd"
		}
	}
	if bin == "" {
		Missing(t, "sshd (Debian package openssh-server) is not installed")
	}
	// sshd re-executes itself and insists on an absolute path.
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshd: current user: %v", err)
	}
	dir := t.TempDir()
	s := &SSHServer{
		Host:       "127.0.0.1",
		Port:       FreePort(t, 0),
		User:       u.Username,
		Dir:        filepath.Join(dir, "data"),
		KeyFile:    filepath.Join(dir, "id_ed25519"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		bin:        bin,
		conf:       filepath.Join(dir, "sshd_config"),
		authorized: filepath.Join(dir, "authorized_keys"),
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Host keys: Ed25519 and ECDSA.
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var hostKeyLines []string
	for _, k := range []struct {
		name string
		priv any
		pub  any
	}{{"host_ed25519", edPriv, edPub}, {"host_ecdsa", ecPriv, &ecPriv.PublicKey}} {
		file := filepath.Join(dir, k.name)
		sshdWriteKey(t, file, k.priv, nil)
		pub, err := ssh.NewPublicKey(k.pub)
		if err != nil {
			t.Fatal(err)
		}
		s.HostKeys = append(s.HostKeys, pub)
		hostKeyLines = append(hostKeyLines, "HostKey "+file)
	}
	// Client key.
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshdWriteKey(t, s.KeyFile, clientPriv, nil)
	if s.Key, err = ssh.NewSignerFromKey(clientPriv); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.authorized, ssh.MarshalAuthorizedKey(s.Key.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKeys[0]) + "\n"
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := strings.Join(append(hostKeyLines,
		"ListenAddress "+s.Host,
		"Port "+strconv.Itoa(s.Port),
		"AuthorizedKeysFile "+s.authorized,
		"PidFile none",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"MaxStartups 100",
		"MaxSessions 100",
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
	), "\n") + "\n"
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// The privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshd: %v", err)
		}
	}
	s.Start(t)
	return s
}

// sshdWriteKey writes a private key in OpenSSH format, encrypted when
// passphrase is not nil.
func sshdWriteKey(t testing.TB, file string, priv any, passphrase []byte) {
	t.Helper()
	var (
		block *pem.Block
		err   error
	)
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "bunker test", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "bunker test")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

// NewKey makes a new ed25519 client key in the server's temporary
// directory, writes it to a file (encrypted with passphrase unless it is
// empty), authorizes it when authorize is set, and returns the file and the
// key.
func (s *SSHServer) NewKey(t testing.TB, passphrase string, authorize bool) (string, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(filepath.Dir(s.KeyFile), "key-*")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	var pass []byte
	if passphrase != "" {
		pass = []byte(passphrase)
	}
	sshdWriteKey(t, f.Name(), priv, pass)
	if authorize {
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		s.Authorize(t, signer.PublicKey())
	}
	return f.Name(), priv
}

// Authorize adds a public key to the authorized keys (sshd reads them at
// every login).
func (s *SSHServer) Authorize(t testing.TB, pub ssh.PublicKey) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.authorized, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(pub)); err != nil {
		t.Fatal(err)
	}
}

// Start starts sshd (again, after Kill) on the same port with the same
// keys and waits until it accepts connections. Kill runs when t ends.
func (s *SSHServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.Exited() {
		t.Fatalf("sshd: already running")
	}
	cmd := exec.Command(s.bin, "-D", "-e", "-f", s.conf)
	s.proc = Start(t, "sshd", cmd)
	// Registered after Start's own cleanup, so it runs first and also
	// ends the forked sessions, which a signal to the process group
	// does not reach.
	t.Cleanup(s.Kill)
	s.proc.WaitTCP(t, s.Addr(), 10*time.Second)
}

// Kill kills sshd with SIGKILL, together with the session processes it
// forked (which run in sessions of their own), so that established
// connections break as well. It waits until the port is free.
func (s *SSHServer) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || p.Exited() {
		return
	}
	// Stop the listener from forking new sessions first, then kill the
	// sessions it forked, then the listener.
	pid := p.Cmd.Process.Pid
	stopAndKill(pid, sshdDescendants)
	p.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l, err := net.Listen("tcp", s.Addr())
		if err == nil {
			_ = l.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sshdDescendants returns the processes below pid, from /proc.
func sshdDescendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]int)
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid int
		if _, err := fmt.Sscan(string(stat[i+1:]), &state, &ppid); err != nil {
			continue
		}
		children[ppid] = append(children[ppid], c)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
