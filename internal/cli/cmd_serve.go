package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/restserver"
	"github.com/spf13/cobra"
)

func (a *App) serveCommand() *cobra.Command {
	var opts struct {
		path, listen, htpasswd     string
		tlsCert, tlsKey            string
		noTLS, noAuth              bool
		privateRepos, appendOnly   bool
		metricsNoAuth              bool
		maxRequestSize, uploadMem  string
		userUploadMem, minRate     string
		maxConcurrent              int
		transferWindow             time.Duration
		headerTimeout, idleTimeout time.Duration
		shutdownTimeout            time.Duration
	}
	cmd := &cobra.Command{
		Use:   "serve --path DIR (--htpasswd FILE | --no-auth)",
		Short: "Serve repositories over HTTPS (the rest: backend)",
		Long: `Serve the repositories in a directory over HTTP/2 with TLS, for clients using
the rest: backend (-r rest:https://user@host:8000/repo).

Without --tls-cert/--tls-key the server makes a self-signed certificate on first
start, keeps it in DIR/.bunker-serve/ and prints its fingerprint; clients pin it
with BUNKER_REST_FINGERPRINT=sha256:... . --no-tls serves plain HTTP (and h2c),
only for use behind a proxy that terminates TLS.

Users come from an htpasswd file with bcrypt entries (htpasswd -B); --no-auth
must be given to serve without users. With --private-repos user U reaches only
the repositories under /U/. With --append-only nothing can be deleted or
overwritten, except writer session markers (sessions/) and re-uploads of
identical bytes, nothing can be written under maint/ (prune's plans and lease),
and keys/, packs/, index/ and snapshots/ objects must be named by the BLAKE3-256
of their bytes: a client can back up but not destroy backups, nor plant what
maintenance would trust. Run prune against a server without --append-only.

Tenants are isolated: upload memory is taken as body bytes arrive, one user
holds at most --max-upload-memory-per-user of it (default the larger of a
quarter of --max-upload-memory and twice --max-request-size; at most half of
--max-upload-memory) and at most half of --max-concurrent requests, and a
transfer slower than --min-transfer-rate over --transfer-window is cut off.

Prometheus metrics are served on /metrics (to any user; to anyone with
--metrics-no-auth). SIGINT/SIGTERM stops accepting connections and lets the
requests in flight finish (at most --shutdown-timeout), then exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			maxReq, err := parseByteSize(opts.maxRequestSize)
			if err != nil {
				return fmt.Errorf("--max-request-size: %w", err)
			}
			var uploadMem int64
			if opts.uploadMem != "" {
				if uploadMem, err = parseByteSize(opts.uploadMem); err != nil {
					return fmt.Errorf("--max-upload-memory: %w", err)
				}
			}
			var userUploadMem int64
			if opts.userUploadMem != "" {
				if userUploadMem, err = parseByteSize(opts.userUploadMem); err != nil {
					return fmt.Errorf("--max-upload-memory-per-user: %w", err)
				}
			}
			minRate, err := parseByteSize(opts.minRate)
			if err != nil {
				return fmt.Errorf("--min-transfer-rate: %w", err)
			}
			if opts.maxConcurrent <= 0 {
				return fmt.Errorf("--max-concurrent %d: want at least 1", opts.maxConcurrent)
			}
			if opts.transferWindow < time.Second {
				return fmt.Errorf("--transfer-window %v: want at least 1s", opts.transferWindow)
			}
			for _, d := range []struct {
				flag string
				v    time.Duration
			}{{"--header-timeout", opts.headerTimeout}, {"--idle-timeout", opts.idleTimeout}, {"--shutdown-timeout", opts.shutdownTimeout}} {
				if d.v <= 0 {
					return fmt.Errorf("%s %v: want a positive duration", d.flag, d.v)
				}
			}
			host, _, err := net.SplitHostPort(opts.listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", opts.listen, err)
			}
			so := restserver.Options{
				Dir:              opts.path,
				NoAuth:           opts.noAuth,
				PrivateRepos:     opts.privateRepos,
				AppendOnly:       opts.appendOnly,
				MaxRequestSize:   maxReq,
				MaxConcurrent:    opts.maxConcurrent,
				UploadMemory:     uploadMem,
				UserUploadMemory: userUploadMem,
				MinTransferRate:  minRate,
				TransferWindow:   opts.transferWindow,
				MetricsNoAuth:    opts.metricsNoAuth,
				NoTLS:            opts.noTLS,
				TLSCert:          opts.tlsCert,
				TLSKey:           opts.tlsKey,
				Hosts:            []string{host},
				HeaderTimeout:    opts.headerTimeout,
				IdleTimeout:      opts.idleTimeout,
				ShutdownTimeout:  opts.shutdownTimeout,
				Logger:           a.log,
			}
			if opts.htpasswd != "" {
				if opts.noAuth {
					return errors.New("--no-auth and --htpasswd exclude each other")
				}
				users, err := restserver.LoadHtpasswd(opts.htpasswd)
				if err != nil {
					return err
				}
				so.Users = users
			}
			srv, err := restserver.New(so)
			if err != nil {
				return err
			}
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", opts.listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", opts.listen, err)
			}
			scheme := "https"
			if !srv.TLS() {
				scheme = "http"
			}
			u := url.URL{Scheme: scheme, Host: ln.Addr().String(), Path: "/"}
			if a.g.json {
				msg := map[string]any{"message_type": "serving", "url": u.String(), "path": opts.path,
					"tls": srv.TLS(), "auth": !opts.noAuth, "append_only": opts.appendOnly, "private_repos": opts.privateRepos}
				if fp := srv.Fingerprint(); fp != "" {
					msg["fingerprint"] = fp
					msg["new_certificate"] = srv.NewCertificate()
				}
				a.out.jsonLine(msg)
			} else {
				a.out.textf("serving repositories in %s on %s", opts.path, u.String())
				if fp := srv.Fingerprint(); fp != "" {
					note := ""
					if srv.NewCertificate() {
						note = " (new)"
					}
					a.out.textf("TLS certificate fingerprint%s: %s", note, fp)
					if opts.tlsCert == "" {
						a.out.textf("clients: BUNKER_REST_FINGERPRINT=%s", fp)
					}
				}
			}
			if opts.noAuth {
				a.log.Warn("serving without authentication (--no-auth): anyone who can connect can read and write")
			}
			if err := srv.Serve(ctx, ln); err != nil {
				return err
			}
			a.out.textf("stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.path, "path", "", "directory holding the repositories (created if missing)")
	f.StringVar(&opts.listen, "listen", "127.0.0.1:8000", "address to listen on (host:port; port 0 picks one)")
	f.StringVar(&opts.htpasswd, "htpasswd", "", "htpasswd file with bcrypt entries (htpasswd -B)")
	f.BoolVar(&opts.noAuth, "no-auth", false, "serve without authentication")
	f.BoolVar(&opts.privateRepos, "private-repos", false, "let each user reach only the repositories under /USER/")
	f.BoolVar(&opts.appendOnly, "append-only", false, "refuse deleting and overwriting objects (except sessions/ and identical re-uploads) and writing maint/; check object names")
	f.StringVar(&opts.tlsCert, "tls-cert", "", "TLS certificate file (PEM); default a self-signed one kept in --path")
	f.StringVar(&opts.tlsKey, "tls-key", "", "TLS key file (PEM) of --tls-cert")
	f.BoolVar(&opts.noTLS, "no-tls", false, "serve plain HTTP (and h2c), for use behind a TLS proxy")
	f.BoolVar(&opts.metricsNoAuth, "metrics-no-auth", false, "serve /metrics without authentication")
	f.StringVar(&opts.maxRequestSize, "max-request-size", "256MiB", "largest object a client may upload")
	f.StringVar(&opts.uploadMem, "max-upload-memory", "", "most memory for uploads in flight (default max(1GiB, 4 × --max-request-size); at least twice the per-user share)")
	f.StringVar(&opts.userUploadMem, "max-upload-memory-per-user", "", "most upload memory one user's requests hold (default max(1/4 of --max-upload-memory, 2 × --max-request-size))")
	f.StringVar(&opts.minRate, "min-transfer-rate", "8KiB", "cut off an upload or download slower than this per second over --transfer-window")
	f.DurationVar(&opts.transferWindow, "transfer-window", restserver.DefaultTransferWindow, "window over which --min-transfer-rate is measured (and the grace before the first check)")
	f.IntVar(&opts.maxConcurrent, "max-concurrent", restserver.DefaultMaxConcurrent, "most requests served at once")
	f.DurationVar(&opts.headerTimeout, "header-timeout", restserver.DefaultHeaderTimeout, "time limit to read a request's headers")
	f.DurationVar(&opts.idleTimeout, "idle-timeout", restserver.DefaultIdleTimeout, "close keep-alive connections idle this long")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", restserver.DefaultShutdownTimeout, "on a signal, wait this long for requests in flight")
	return cmd
}

// parseByteSize parses "256MiB", "1GiB", "512KiB", "64M", "1000" (bytes).
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want e.g. 256MiB)", s)
	}
	return n * mult, nil
}
