package location

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// Policy limits what a repository location given by someone else (a
// tenant of the Kubernetes operator) may make this process do: which
// schemes it may use, which hosts its backend may connect to, and whether
// the backend may fall back to this process's own identity (an instance
// role, a credentials file in its home) when the location brings no
// credentials of its own.
//
// Hosts are checked where the connection is made, after name resolution,
// so a name that resolves (or re-resolves) to a refused address is
// refused too; a backend under a policy connects directly, never through
// the proxy of the process's environment.
type Policy struct {
	schemes []string
	names   []string       // exact names and "*.suffix"; "*" is any name
	nets    []netip.Prefix // allowed addresses, also inside the blocked ranges
	// ambient lets backends use the process's own identity.
	ambient bool
}

// PolicyOptions configure NewPolicy.
type PolicyOptions struct {
	// Schemes are the location schemes allowed ("s3", "gs", "azure",
	// "sftp", "rest", "local"); empty allows every one.
	Schemes []string
	// Hosts are the hosts a backend may connect to: a name
	// ("minio.storage.svc"), a suffix ("*.example.com"), an address or a
	// CIDR block ("10.0.0.0/8"). Empty allows any name. Either way an
	// address that is loopback, link-local (cloud metadata services),
	// unspecified or multicast is refused unless an address or block
	// listed here contains it.
	Hosts []string
	// AmbientCredentials lets backends fall back to this process's own
	// identity when the location brings no credentials.
	AmbientCredentials bool
}

// NewPolicy checks opts and returns the policy.
func NewPolicy(opts PolicyOptions) (*Policy, error) {
	p := &Policy{ambient: opts.AmbientCredentials}
	for _, s := range opts.Schemes {
		s = strings.ToLower(strings.TrimSpace(s))
		switch s {
		case "s3", "gs", "azure", "sftp", "rest", "local":
			p.schemes = append(p.schemes, s)
		default:
			return nil, fmt.Errorf("repository scheme %q: want s3, gs, azure, sftp, rest or local", s)
		}
	}
	for _, h := range opts.Hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if pf, err := netip.ParsePrefix(h); err == nil {
			p.nets = append(p.nets, pf.Masked())
			continue
		}
		if a, err := netip.ParseAddr(h); err == nil {
			p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if h != "*" && (name == "" || strings.ContainsAny(name, "*/:@ []") || strings.HasPrefix(name, ".")) {
			return nil, fmt.Errorf("repository host %q: want a name, *.domain, an address or a CIDR block", h)
		}
		p.names = append(p.names, h)
	}
	return p, nil
}

// Options returns what the policy was made from (normalised).
func (p *Policy) Options() PolicyOptions {
	o := PolicyOptions{Schemes: slices.Clone(p.schemes), Hosts: slices.Clone(p.names), AmbientCredentials: p.ambient}
	for _, n := range p.nets {
		if n.IsSingleIP() {
			o.Hosts = append(o.Hosts, n.Addr().String())
		} else {
			o.Hosts = append(o.Hosts, n.String())
		}
	}
	return o
}

// AmbientCredentials reports whether backends may use the process's own
// identity.
func (p *Policy) AmbientCredentials() bool { return p == nil || p.ambient }

// CheckScheme refuses a location whose scheme the policy does not allow.
func (p *Policy) CheckScheme(loc string) error {
	if p == nil || len(p.schemes) == 0 {
		return nil
	}
	scheme, _ := Split(loc)
	if slices.Contains(p.schemes, scheme) {
		return nil
	}
	return storage.Permanent(&PolicyError{What: fmt.Sprintf("scheme %q", scheme),
		Why: "not an allowed scheme (allowed: " + strings.Join(p.schemes, ", ") + ")"})
}

// PolicyError is a location or connection the policy refuses.
type PolicyError struct {
	What string // `scheme "local"`, `host "169.254.169.254"`
	Why  string
}

func (e *PolicyError) Error() string { return "repository policy refuses " + e.What + ": " + e.Why }

// IsPolicyError reports whether err is (or wraps) a PolicyError.
func IsPolicyError(err error) bool {
	var pe *PolicyError
	return errors.As(err, &pe)
}

// nameAllowed reports whether the host name may be connected to (its
// addresses are checked after resolution).
func (p *Policy) nameAllowed(host string) bool {
	if len(p.names) == 0 && len(p.nets) == 0 {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range p.names {
		switch {
		case n == "*", n == host:
			return true
		case strings.HasPrefix(n, "*.") && strings.HasSuffix(host, n[1:]):
			return true
		}
	}
	return false
}

// addrAllowed returns why a connection to a is refused, or "".
// namedOK says the host's name was allowed (by name or "*").
func (p *Policy) addrAllowed(a netip.Addr, namedOK bool) string {
	a = a.Unmap()
	for _, pf := range p.nets {
		if pf.Contains(a) {
			return ""
		}
	}
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata services live there)"
	case a.IsUnspecified():
		return "an unspecified address"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case !namedOK:
		return "not an allowed host"
	}
	return ""
}

func (p *Policy) allowedHosts() string {
	s := p.Options().Hosts
	if len(s) == 0 {
		return "any host outside the loopback, link-local, unspecified and multicast ranges"
	}
	return strings.Join(s, ", ")
}

// Dialer returns a dial function that connects only where the policy
// allows: the host name is checked, then every address it resolves to,
// and the connection goes to a checked address.
func (p *Policy) Dialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		refuse := func(why string) error {
			return storage.Permanent(&PolicyError{What: fmt.Sprintf("host %q", host),
				Why: why + " (allowed hosts: " + p.allowedHosts() + ")"})
		}
		var addrs []netip.Addr
		namedOK := false
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
			namedOK = len(p.names) == 0 && len(p.nets) == 0 || slices.Contains(p.names, "*")
		} else {
			// A name not allowed by name may still be allowed by the
			// addresses it resolves to (a listed CIDR block).
			namedOK = p.nameAllowed(host)
			if !namedOK && len(p.nets) == 0 {
				return nil, refuse("not an allowed host")
			}
			ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, err
			}
			addrs = ips
		}
		// Every address must pass: a name that resolves to one allowed
		// and one refused address is refused, whichever would be tried.
		for _, a := range addrs {
			if why := p.addrAllowed(a, namedOK); why != "" {
				if a.String() != host {
					why = "it resolves to " + a.String() + ", " + why
				}
				return nil, refuse(why)
			}
		}
		var firstErr error
		for _, a := range addrs {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: no address", host)
		}
		return nil, firstErr
	}
}
