package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// Subprotocols offered over WebSocket, newest first. An API server that
// cannot upgrade to WebSocket (before 1.29) is asked again over SPDY.
var execProtocols = []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}

// ExitError is a command that exited non-zero.
type ExitError struct {
	Code    int
	Message string
}

func (e *ExitError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Message
}

// streamExec runs the exec request u (pods/exec with stdout and stderr,
// no stdin) with client-go's remote command client and copies the
// command's output to stdout and stderr. A non-zero exit is *ExitError.
func streamExec(ctx context.Context, cfg *rest.Config, u *url.URL, stdout, stderr io.Writer) error {
	ws, err := remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u.String(), execProtocols...)
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr})
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return &ExitError{Code: ce.Code, Message: ce.Err.Error()}
	}
	return err
}
