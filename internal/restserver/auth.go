package restserver

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// authCacheTTL is how long a verified password is accepted without
// running bcrypt again.
const authCacheTTL = time.Minute

// Users checks HTTP basic credentials against bcrypt hashes from an
// htpasswd file. Successful checks are remembered for a minute (bcrypt is
// deliberately slow; a client sends the password with every request) as
// an HMAC of the password under a key made at start, never the password
// itself. It is safe for concurrent use.
type Users struct {
	hashes map[string][]byte
	dummy  []byte // hash compared for unknown users, so they take as long
	now    func() time.Time

	key   [32]byte
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	mac   [32]byte
	until time.Time
}

// LoadHtpasswd reads an htpasswd file (see ParseHtpasswd).
func LoadHtpasswd(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer func() { _ = f.Close() }()
	u, err := ParseHtpasswd(f)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	return u, nil
}

// ParseHtpasswd reads "user:hash" lines; blank lines and lines starting
// with # are skipped. Only bcrypt hashes ($2y$, $2b$, $2a$; made by
// "htpasswd -B") are supported: any other kind is an error naming the
// line, as is a duplicate user or an empty file.
func ParseHtpasswd(r io.Reader) (*Users, error) {
	u := &Users{hashes: map[string][]byte{}, now: time.Now, cache: map[string]cached{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", n, user)
		}
		if kind := hashKind(hash); kind != "bcrypt" {
			return nil, fmt.Errorf("line %d: user %q: unsupported password hash kind %s: only bcrypt is supported (make entries with 'htpasswd -B')", n, user, kind)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: user %q: malformed bcrypt hash: %w", n, user, err)
		}
		u.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("no users")
	}
	if _, err := rand.Read(u.key[:]); err != nil {
		return nil, err
	}
	// Unknown users are checked against a hash of the same cost as a
	// real one, so that timing does not tell which users exist.
	cost := bcrypt.DefaultCost
	for _, h := range u.hashes {
		cost, _ = bcrypt.Cost(h)
		break
	}
	dummy, err := bcrypt.GenerateFromPassword(u.key[:16], cost)
	if err != nil {
		return nil, err
	}
	u.dummy = dummy
	return u, nil
}

// hashKind names the kind of an htpasswd hash.
func hashKind(h string) string {
	switch {
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2a$"):
		return "bcrypt"
	case strings.HasPrefix(h, "$apr1$"):
		return "apr1 (Apache MD5)"
	case strings.HasPrefix(h, "{SHA}"):
		return "{SHA} (SHA-1)"
	case strings.HasPrefix(h, "$1$"):
		return "$1$ (MD5 crypt)"
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return h[:3] + " (SHA crypt)"
	case strings.HasPrefix(h, "$"):
		kind, _, _ := strings.Cut(h[1:], "$")
		return "$" + kind + "$"
	}
	return "crypt or plain text"
}

// Len returns the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// Check reports whether password is the password of user.
func (u *Users) Check(user, password string) bool {
	mac := hmac.New(sha256.New, u.key[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var sum [32]byte
	mac.Sum(sum[:0])
	now := u.now()
	u.mu.Lock()
	c, ok := u.cache[user]
	u.mu.Unlock()
	if ok && now.Before(c.until) && hmac.Equal(c.mac[:], sum[:]) {
		return true
	}
	hash, known := u.hashes[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	u.mu.Lock()
	u.cache[user] = cached{mac: sum, until: now.Add(authCacheTTL)}
	u.mu.Unlock()
	return true
}
