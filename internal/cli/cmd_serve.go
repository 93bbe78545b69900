package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/bunkerbackup/bunker/internal/restserver"
	"github.com/bunkerbackup/bunker/internal/units"
	"github.com/spf13/cobra"
)

// serveFlags are the flags of bunker serve: most go straight into the
// server's options, the sizes are parsed by options.
type serveFlags struct {
	so                        restserver.Options
	listen, htpasswd          string
	maxRequestSize, uploadMem string
	userUploadMem, minRate    string
}

func (a *App) serveCommand() *cobra.Command {
	var opts serveFlags
	cmd := &cobra.Command{
		Use:   "serve --path DIR (--htpasswd FILE | --no-auth)",
		Short: "Serve repositories over HTTPS (the rest: backend)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			so, err := opts.options()
			if err != nil {
				return err
			}
			so.Logger = a.log
			return a.serve(cmd.Context(), opts, so)
		},
	}
	opts.add(cmd)
	return cmd
}

func (opts *serveFlags) add(cmd *cobra.Command) {
	f, so := cmd.Flags(), &opts.so
	f.StringVar(&so.Dir, "path", "", "directory holding the repositories (created if missing)")
	f.StringVar(&opts.listen, "listen", "127.0.0.1:8000", "address to listen on (host:port; port 0 picks one)")
	f.StringVar(&opts.htpasswd, "htpasswd", "", "htpasswd file with bcrypt entries (htpasswd -B)")
	f.BoolVar(&so.NoAuth, "no-auth", false, "serve without authentication")
	f.BoolVar(&so.PrivateRepos, "private-repos", false, "let each user reach only the repositories under /USER/")
	f.BoolVar(&so.AppendOnly, "append-only", false, "refuse deleting and overwriting objects (except sessions/ and identical re-uploads) and writing maint/; check object names")
	f.StringVar(&so.TLSCert, "tls-cert", "", "TLS certificate file (PEM); default a self-signed one kept in --path")
	f.StringVar(&so.TLSKey, "tls-key", "", "TLS key file (PEM) of --tls-cert")
	f.BoolVar(&so.NoTLS, "no-tls", false, "serve plain HTTP (and h2c), for use behind a TLS proxy")
	f.BoolVar(&so.MetricsNoAuth, "metrics-no-auth", false, "serve /metrics without authentication")
	f.StringVar(&opts.maxRequestSize, "max-request-size", "256MiB", "largest object a client may upload")
	f.StringVar(&opts.uploadMem, "max-upload-memory", "", "most memory for uploads in flight (default max(1GiB, 4 × --max-request-size); at least twice the per-user share)")
	f.StringVar(&opts.userUploadMem, "max-upload-memory-per-user", "", "most upload memory one user's requests hold (default max(1/4 of --max-upload-memory, 2 × --max-request-size))")
	f.StringVar(&opts.minRate, "min-transfer-rate", "8KiB", "cut off an upload or download slower than this per second over --transfer-window")
	f.DurationVar(&so.TransferWindow, "transfer-window", restserver.DefaultTransferWindow, "window over which --min-transfer-rate is measured (and the grace before the first check)")
	f.IntVar(&so.MaxConcurrent, "max-concurrent", restserver.DefaultMaxConcurrent, "most requests served at once")
	f.DurationVar(&so.HeaderTimeout, "header-timeout", restserver.DefaultHeaderTimeout, "time limit to read a request's headers")
	f.DurationVar(&so.IdleTimeout, "idle-timeout", restserver.DefaultIdleTimeout, "close keep-alive connections idle this long")
	f.DurationVar(&so.ShutdownTimeout, "shutdown-timeout", restserver.DefaultShutdownTimeout, "on a signal, wait this long for requests in flight")
}

// options checks the flags and turns them into the server's options.
func (opts *serveFlags) options() (restserver.Options, error) {
	so := opts.so
	sizes := []struct {
		flag, v string
		dst     *int64
	}{{"--max-request-size", opts.maxRequestSize, &so.MaxRequestSize}, {"--max-upload-memory", opts.uploadMem, &so.UploadMemory},
		{"--max-upload-memory-per-user", opts.userUploadMem, &so.UserUploadMemory}, {"--min-transfer-rate", opts.minRate, &so.MinTransferRate}}
	for _, sz := range sizes {
		if sz.v == "" {
			continue // the server's default
		}
		v, err := units.ParseSize(sz.v)
		if err != nil {
			return so, fmt.Errorf("%s: %w", sz.flag, err)
		}
		*sz.dst = v
	}
	if so.MaxConcurrent <= 0 {
		return so, fmt.Errorf("--max-concurrent %d: want at least 1", so.MaxConcurrent)
	}
	if so.TransferWindow < time.Second {
		return so, fmt.Errorf("--transfer-window %v: want at least 1s", so.TransferWindow)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--header-timeout", so.HeaderTimeout}, {"--idle-timeout", so.IdleTimeout}, {"--shutdown-timeout", so.ShutdownTimeout}} {
		if d.v <= 0 {
			return so, fmt.Errorf("%s %v: want a positive duration", d.flag, d.v)
		}
	}
	host, _, err := net.SplitHostPort(opts.listen)
	if err != nil {
		return so, fmt.Errorf("--listen %q: %w", opts.listen, err)
	}
	so.Hosts = []string{host}
	if opts.htpasswd != "" {
		if so.NoAuth {
			return so, errors.New("--no-auth and --htpasswd exclude each other")
		}
		if so.Users, err = restserver.LoadHtpasswd(opts.htpasswd); err != nil {
			return so, err
		}
	}
	return so, nil
}

// serve listens, says where and with which certificate, and serves until
// ctx ends.
func (a *App) serve(ctx context.Context, opts serveFlags, so restserver.Options) error {
	srv, err := restserver.New(so)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.listen, err)
	}
	a.printServing(srv, ln.Addr().String(), so)
	if so.NoAuth {
		a.log.Warn("serving without authentication (--no-auth): anyone who can connect can read and write")
	}
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	a.out.textf("stopped")
	return nil
}

func (a *App) printServing(srv *restserver.Server, addr string, so restserver.Options) {
	scheme := "https"
	if !srv.TLS() {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: addr, Path: "/"}
	fp := srv.Fingerprint()
	if a.g.json {
		msg := map[string]any{"message_type": "serving", "url": u.String(), "path": so.Dir,
			"tls": srv.TLS(), "auth": !so.NoAuth, "append_only": so.AppendOnly, "private_repos": so.PrivateRepos}
		if fp != "" {
			msg["fingerprint"] = fp
			msg["new_certificate"] = srv.NewCertificate()
		}
		a.out.jsonLine(msg)
		return
	}
	a.out.textf("serving repositories in %s on %s", so.Dir, u.String())
	if fp == "" {
		return
	}
	note := ""
	if srv.NewCertificate() {
		note = " (new)"
	}
	a.out.textf("TLS certificate fingerprint%s: %s", note, fp)
	if so.TLSCert == "" {
		a.out.textf("clients: BUNKER_REST_FINGERPRINT=%s", fp)
	}
}
