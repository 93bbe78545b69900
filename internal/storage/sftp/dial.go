package sftp

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bunkerbackup/bunker/internal/storage"
)

const (
	// keepaliveInterval is how often an idle or busy connection is
	// probed with a keepalive@openssh.com request; a connection whose
	// reply takes longer than keepaliveTimeout is closed, so that a dead
	// peer (no RST, e.g. a vanished NAT mapping) fails the requests on it
	// instead of hanging them forever.
	keepaliveInterval = 30 * time.Second
	keepaliveTimeout  = 60 * time.Second
)

// loadKeys reads the private key files of cfg. Missing default key files
// are skipped; an encrypted default key without a passphrase is skipped
// when an agent may hold it instead. The notes say what was skipped, for
// the error message of a failed login.
func loadKeys(cfg Config) (signers []ssh.Signer, notes []string, err error) {
	files, explicit := cfg.DefaultKeyFiles, false
	if cfg.KeyFile != "" {
		files, explicit = []string{cfg.KeyFile}, true
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			continue
		}
		if err != nil {
			return nil, nil, storage.Permanent(fmt.Errorf("read SSH key: %w", err))
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing) && cfg.KeyPassphrase != "":
			s, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(cfg.KeyPassphrase))
			if err != nil {
				// Most likely a wrong passphrase, which is a rejected
				// credential; the error never contains the passphrase.
				return nil, nil, fmt.Errorf("decrypt SSH key %s with BUNKER_SFTP_KEY_PASSPHRASE: %w: %w", f, storage.ErrAuth, err)
			}
		case errors.As(err, &missing) && !explicit && cfg.AgentSocket != "":
			notes = append(notes, f+" (encrypted, no BUNKER_SFTP_KEY_PASSPHRASE)")
			continue
		case errors.As(err, &missing):
			return nil, nil, fmt.Errorf("SSH key %s is encrypted: set BUNKER_SFTP_KEY_PASSPHRASE or add the key to ssh-agent: %w", f, storage.ErrAuth)
		case err != nil:
			return nil, nil, storage.Permanent(fmt.Errorf("parse SSH key %s: %w", f, err))
		}
		signers = append(signers, s)
		notes = append(notes, f)
	}
	return signers, notes, nil
}

// session is one SSH connection with its SFTP session.
type session struct {
	ssh  *ssh.Client
	sftp *pkgsftp.Client
	// posixRename and fsync report the OpenSSH extensions the server
	// offers.
	posixRename, fsync, statvfs bool
	done                        chan struct{} // closed by close
	once                        sync.Once
}

// close ends the connection. Closing the SSH connection first makes the
// SFTP client's reader stop at once, even when the server hangs.
func (s *session) close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.ssh.Close()
		_ = s.sftp.Close()
	})
}

// dial connects to the server, checks its host key, logs in and starts the
// SFTP subsystem. ctx and cfg.ConnectTimeout bound all of it.
func (b *Backend) dial(ctx context.Context) (*session, error) {
	addr := b.cfg.addr()
	timeout := b.cfg.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := (&net.Dialer{}).DialContext
	if b.cfg.Dial != nil {
		dial = b.cfg.Dial
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// The SSH handshake and the SFTP start take no context: closing the
	// connection when ctx ends unblocks them.
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	s, err := b.handshake(nc, addr)
	if !stop() {
		if s != nil {
			s.close()
		}
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return s, nil
}

// handshake runs SSH and SFTP over nc.
func (b *Backend) handshake(nc net.Conn, addr string) (*session, error) {
	hk, err := newHostKeyChecker(b.cfg.KnownHostsFiles, addr, nc.RemoteAddr())
	if err != nil {
		return nil, storage.Permanent(err)
	}
	signers := b.signers
	tried := append([]string(nil), b.keyNotes...)
	if b.cfg.AgentSocket != "" {
		ac, err := (&net.Dialer{}).Dial("unix", b.cfg.AgentSocket)
		if err != nil {
			tried = append([]string{"ssh-agent (unreachable: " + err.Error() + ")"}, tried...)
		} else {
			defer func() { _ = ac.Close() }()
			as, err := agent.NewClient(ac).Signers()
			switch {
			case err != nil:
				tried = append([]string{"ssh-agent (" + err.Error() + ")"}, tried...)
			default:
				tried = append([]string{fmt.Sprintf("ssh-agent (%d keys)", len(as))}, tried...)
				signers = append(as, signers...)
			}
		}
	}
	if len(signers) == 0 {
		return nil, fmt.Errorf("no SSH key to log in with (tried %s); set BUNKER_SFTP_KEY or SSH_AUTH_SOCK: %w",
			describeTried(tried, b.cfg), storage.ErrAuth)
	}
	conf := &ssh.ClientConfig{
		User:              b.cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms,
		ClientVersion:     "SSH-2.0-Bunker",
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, conf)
	if err != nil {
		if herr := hk.rejection(); herr != nil {
			return nil, storage.Permanent(herr)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("log in as %q with %s: %w: %w", b.cfg.User, describeTried(tried, b.cfg), storage.ErrAuth, err)
		}
		if strings.Contains(err.Error(), "no common algorithm for host key") && len(hk.known) > 0 {
			return nil, storage.Permanent(fmt.Errorf("%w; the server offers none of the host key types known_hosts lists for %s (%s): its keys may have been replaced, check with ssh-keyscan and update known_hosts",
				err, hk.host, strings.Join(hk.knownTypes(), ", ")))
		}
		return nil, err
	}
	client := ssh.NewClient(c, chans, reqs)
	sc, err := pkgsftp.NewClient(client,
		pkgsftp.UseConcurrentWrites(true),
		pkgsftp.UseFstat(true),
		pkgsftp.MaxConcurrentRequestsPerFile(64),
	)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("start SFTP session: %w", err)
	}
	s := &session{ssh: client, sftp: sc, done: make(chan struct{})}
	_, s.posixRename = sc.HasExtension("posix-rename@openssh.com")
	_, s.statvfs = sc.HasExtension("statvfs@openssh.com")
	v, ok := sc.HasExtension("fsync@openssh.com")
	s.fsync = ok && v == "1"
	return s, nil
}

func describeTried(tried []string, cfg Config) string {
	if len(tried) == 0 {
		if cfg.KeyFile == "" && len(cfg.DefaultKeyFiles) > 0 {
			return "no key: none of " + strings.Join(cfg.DefaultKeyFiles, ", ") + " exists"
		}
		return "no key"
	}
	return strings.Join(tried, ", ")
}

// keepalive probes the connection until it is closed, closing it when the
// server does not answer in time.
func (s *session) keepalive() {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		timer := time.AfterFunc(keepaliveTimeout, s.close)
		_, _, err := s.ssh.SendRequest("keepalive@openssh.com", true, nil)
		timer.Stop()
		if err != nil {
			s.close()
			return
		}
	}
}

// hostKeyChecker checks the server's host key against known_hosts files
// and explains a rejection.
type hostKeyChecker struct {
	configured []string // known_hosts files as configured
	files      []string // those that exist
	addFile    string   // where the user should add the key
	host       string   // known_hosts form of the address: host or [host]:port
	hostname   string
	port       string
	callback   ssh.HostKeyCallback
	known      []knownhosts.KnownKey // keys known for the host
	algorithms []string              // host key algorithms to negotiate

	mu  sync.Mutex
	err error // why the key was rejected
}

func newHostKeyChecker(files []string, addr string, remote net.Addr) (*hostKeyChecker, error) {
	hk := &hostKeyChecker{host: knownhosts.Normalize(addr), configured: files}
	hk.hostname, hk.port, _ = net.SplitHostPort(addr)
	if len(files) > 0 {
		hk.addFile = files[0]
	}
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		hk.files = append(hk.files, f)
	}
	cb, err := knownhosts.New(hk.files...)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	hk.callback = cb
	// Asking about a key that is surely unknown makes the callback list
	// the keys known for the host.
	probe, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, remote, probe); errors.As(err, &ke) {
		hk.known = ke.Want
	}
	hk.algorithms = algorithmsFor(hk.known)
	return hk, nil
}

// algorithmsFor returns the host key algorithms that can verify the known
// keys, so that the server does not pick a key type known_hosts has no
// entry for (Go prefers ECDSA over Ed25519). nil (the library's default)
// when no plain key is known.
func algorithmsFor(known []knownhosts.KnownKey) []string {
	supported := make(map[string]bool)
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		supported[a] = true
	}
	var algos []string
	seen := make(map[string]bool)
	add := func(a string) {
		if supported[a] && !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, k := range known {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	if len(algos) == 0 {
		return nil
	}
	return algos
}

func (hk *hostKeyChecker) knownTypes() []string {
	var types []string
	for _, k := range hk.known {
		types = append(types, k.Key.Type())
	}
	return types
}

// check is the ssh.HostKeyCallback.
func (hk *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hk.callback(hostname, remote, key)
	if err == nil {
		return nil
	}
	err = hk.explain(err, key)
	hk.mu.Lock()
	hk.err = err
	hk.mu.Unlock()
	return err
}

// rejection returns why check rejected the host key, or nil.
func (hk *hostKeyChecker) rejection() error {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	return hk.err
}

func keyscanType(t string) string {
	switch {
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ecdsa"
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	}
	return t
}

// explain turns a rejection of the knownhosts package into advice.
func (hk *hostKeyChecker) explain(err error, key ssh.PublicKey) error {
	offered := fmt.Sprintf("%s key %s", key.Type(), ssh.FingerprintSHA256(key))
	var (
		ke *knownhosts.KeyError
		re *knownhosts.RevokedError
	)
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("host key verification failed: the server %s offered %s, which %s:%d marks as @revoked", hk.host, offered, re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		files := "no known_hosts file exists (looked for " + strings.Join(hk.configured, ", ") + ")"
		if len(hk.files) > 0 {
			files = "it is not in " + strings.Join(hk.files, ", ")
		}
		keyscan := "ssh-keyscan"
		if hk.port != "22" {
			keyscan += " -p " + hk.port
		}
		return fmt.Errorf("host key verification failed: unknown host %s: %s. The server offered %s. "+
			"Check that fingerprint out of band (on the server: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then add the key with: %s -t %s %s >> %s",
			hk.host, files, offered, keyscanType(key.Type()), keyscan, keyscanType(key.Type()), hk.hostname, hk.addFile)
	case errors.As(err, &ke):
		var want []string
		for _, k := range ke.Want {
			want = append(want, fmt.Sprintf("%s:%d (%s %s)", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
		}
		return fmt.Errorf("host key verification failed: WARNING: THE HOST KEY OF %s HAS CHANGED. "+
			"The server offered %s, but known_hosts has %s. "+
			"Someone could be eavesdropping on you right now (man-in-the-middle attack), or the server's host key was replaced. "+
			"Nothing was sent. Verify the new key with the server's administrator; only then remove the old entry with: ssh-keygen -R %s -f %s",
			hk.host, offered, strings.Join(want, ", "), shellQuote(hk.host), ke.Want[0].Filename)
	default:
		return fmt.Errorf("host key verification failed for %s (offered %s): %w", hk.host, offered, err)
	}
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, "[]:* ?") {
		return "'" + s + "'"
	}
	return s
}
