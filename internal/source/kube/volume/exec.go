package volume

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// outputTail is how much of a hook's standard output and error is kept.
const outputTail = 4096

// Exec runs the hook's command in its pod through the API server
// (pods/exec over WebSocket, the protocol kubectl uses, with cfg's
// credentials) and returns the end of its standard output and error.
// It fails, naming the pod and container, when the pod is not running,
// the container does not exist, the command exits non-zero (with its exit
// code and the end of its standard error; the error wraps an *ExitError),
// or it does not finish within the hook's timeout.
//
// A command that times out is not killed: Kubernetes cannot end an exec
// session's process. Hooks should bound themselves (timeout 20 fsfreeze …).
func Exec(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, h Hook) (stdout, stderr string, err error) {
	if err := h.Validate(); err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	pod, err := cs.CoreV1().Pods(h.Namespace).Get(ctx, h.Pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", "", fmt.Errorf("hook %s: pod %s/%s not found", h, h.Namespace, h.Pod)
	}
	if err != nil {
		return "", "", fmt.Errorf("hook %s: %w", h, err)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return "", "", fmt.Errorf("hook %s: pod %s/%s is %s, not Running", h, h.Namespace, h.Pod, pod.Status.Phase)
	}
	container, err := hookContainer(pod, h.Container)
	if err != nil {
		return "", "", fmt.Errorf("hook %s: %w", h, err)
	}
	if h.Container == "" {
		h.Container = container // for messages
	}
	q := url.Values{"container": {container}, "stdout": {"true"}, "stderr": {"true"}}
	for _, a := range h.Command {
		q.Add("command", a)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil || cfg.Host == "" {
		return "", "", fmt.Errorf("hook %s: API server address %q: %v", h, cfg.Host, err)
	}
	if u.Scheme == "" { // a host[:port] without scheme, as rest accepts
		if u, err = url.Parse("https://" + cfg.Host); err != nil {
			return "", "", fmt.Errorf("hook %s: API server address %q: %v", h, cfg.Host, err)
		}
	}
	// The host may carry a path prefix (an API proxy); the core API is
	// under api/v1 of it.
	u = u.JoinPath("api/v1/namespaces", h.Namespace, "pods", h.Pod, "exec")
	u.RawQuery = q.Encode()
	out, errOut := &tailWriter{max: outputTail}, &tailWriter{max: outputTail}
	err = streamExec(ctx, cfg, u, out, errOut)
	stdout, stderr = out.String(), errOut.String()
	if err == nil {
		return stdout, stderr, nil
	}
	prog := h.Command[0]
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		msg := fmt.Sprintf("hook %s: %s exited with code %d", h, prog, ee.Code)
		if s := oneLine(stderr); s != "" {
			msg += ": " + s
		}
		return stdout, stderr, &messageError{msg: msg, err: ee}
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return stdout, stderr, fmt.Errorf("hook %s: %s did not finish within %v (it may still be running in the container)", h, prog, h.timeout())
	}
	return stdout, stderr, fmt.Errorf("hook %s: exec %s: %w", h, prog, err)
}

// hookContainer returns the container a hook runs in: the named one, or
// the pod's default (annotation kubectl.kubernetes.io/default-container,
// else the first).
func hookContainer(pod *corev1.Pod, name string) (string, error) {
	if len(pod.Spec.Containers) == 0 {
		return "", fmt.Errorf("pod %s/%s has no containers", pod.Namespace, pod.Name)
	}
	if name == "" {
		name = pod.Annotations["kubectl.kubernetes.io/default-container"]
	}
	if name == "" {
		return pod.Spec.Containers[0].Name, nil
	}
	names := make([]string, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		if c.Name == name {
			return name, nil
		}
		names[i] = c.Name
	}
	return "", fmt.Errorf("pod %s/%s has no container %q (it has %s)", pod.Namespace, pod.Name, name, strings.Join(names, ", "))
}

// RunHooks runs hooks one after the other. A failing hook with OnError
// "continue" is passed to warn; any other failure stops and is returned.
func RunHooks(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, hooks []Hook, warn func(string)) error {
	for _, h := range hooks {
		_, _, err := Exec(ctx, cfg, cs, h)
		if err == nil {
			continue
		}
		if h.OnError == OnErrorContinue && ctx.Err() == nil {
			if warn != nil {
				warn(err.Error() + " (on-error continue)")
			}
			continue
		}
		return err
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// messageError is err with a message of its own.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// oneLine is s trimmed, with its lines joined by "; ".
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}
