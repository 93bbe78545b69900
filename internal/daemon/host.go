package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hostGuard refuses requests whose Host header names a host the daemon
// was not told it answers to. It is the defence against DNS rebinding: a
// web page on evil.example whose name the attacker re-points at 127.0.0.1
// makes the victim's browser send the page's same-origin requests to the
// loopback daemon, but with "Host: evil.example:PORT".
//
// Allowed are:
//   - an empty Host (HTTP/1.0 clients; browsers always send one);
//   - an IP address literal, any port: a request to an address was sent
//     to that address by a client that chose it, which no DNS answer can
//     redirect (Prometheus scrapes and Kubernetes probes by pod IP);
//   - localhost, any port: browsers and resolvers answer it from the
//     machine itself, never from DNS;
//   - a name in allowed (extra, then the plan's daemon.allowed_hosts read
//     at each request so a reload takes effect): "name" matches any port,
//     "name:port" only that port.
//
// /healthz answers to any Host: it tells nothing but "ok", and probes
// often send whatever Host their configuration says.
func (d *Daemon) hostGuard(extra []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || hostAllowed(r.Host, extra, d.Plan().Daemon.AllowedHosts) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(w, "421 misdirected request: this bunker daemon does not answer to host %q; "+
			"it answers to IP addresses, localhost and the names in daemon.allowed_hosts or --allowed-host (docs/DAEMON.md)\n", r.Host)
	})
}

// hostAllowed applies hostGuard's rules to a Host header.
func hostAllowed(hostport string, lists ...[]string) bool {
	if hostport == "" {
		return true
	}
	host, port := splitHost(hostport)
	if host == "" {
		return false
	}
	ip := host
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		ip = host[1 : len(host)-1]
	}
	if _, err := netip.ParseAddr(ip); err == nil {
		return true
	}
	if host == "localhost" {
		return true
	}
	for _, l := range lists {
		for _, a := range l {
			ah, ap := splitHost(a)
			if ah == host && (ap == "" || ap == port) {
				return true
			}
		}
	}
	return false
}

// splitHost splits "Name.Example.:80" into "name.example" and "80"; an
// IPv6 literal keeps its brackets. Host names compare case-insensitively
// and with or without the final dot of a fully qualified name.
func splitHost(s string) (host, port string) {
	host = s
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return strings.TrimSuffix(strings.ToLower(host), "."), port
}
