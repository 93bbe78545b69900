package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// Hook is a command run in a container of a pod through the API server,
// before (pre) or after (post) the backup of its volumes: to flush and
// freeze an application, and to thaw it again.
type Hook struct {
	Namespace, Pod string
	Container      string        // "" is the pod's default container
	Command        []string      // run directly, not through a shell
	Timeout        time.Duration // 0 is DefaultHookTimeout
	OnError        string        // OnErrorFail ("" too) or OnErrorContinue
	Phase          string        // PhasePre or PhasePost (set by HooksFromPods; ParseHook leaves it "")
}

// Hook values.
const (
	OnErrorFail     = "fail"
	OnErrorContinue = "continue"
	PhasePre        = "pre"
	PhasePost       = "post"

	DefaultHookTimeout = 30 * time.Second
)

// The pod annotations a hook is read from, as in Velero: <phase>.hook.
// backup.bunker.dev/<field>, with phase "pre" or "post".
const (
	annotationDomain = ".hook.backup.bunker.dev/"
	fieldCommand     = "command"   // a JSON array, or words split as ParseHook does
	fieldContainer   = "container" // "" is the pod's default container
	fieldTimeout     = "timeout"   // a Go duration ("30s", "2m")
	fieldOnError     = "on-error"  // Fail or Continue (any case)
)

// HookAnnotation is the name of the annotation with field ("command",
// "container", "timeout", "on-error") of the hook of phase.
func HookAnnotation(phase, field string) string { return phase + annotationDomain + field }

// String names the hook's target for messages: "ns/pod" or
// "ns/pod:container".
func (h Hook) String() string {
	s := h.Namespace + "/" + h.Pod
	if h.Container != "" {
		s += ":" + h.Container
	}
	return s
}

// Validate checks the hook.
func (h Hook) Validate() error {
	if msgs := validation.IsDNS1123Label(h.Namespace); len(msgs) > 0 {
		return fmt.Errorf("hook %s: namespace %q: %s", h, h.Namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(h.Pod); len(msgs) > 0 {
		return fmt.Errorf("hook %s: pod name %q: %s", h, h.Pod, strings.Join(msgs, "; "))
	}
	if h.Container != "" {
		if msgs := validation.IsDNS1123Label(h.Container); len(msgs) > 0 {
			return fmt.Errorf("hook %s: container name %q: %s", h, h.Container, strings.Join(msgs, "; "))
		}
	}
	if len(h.Command) == 0 || h.Command[0] == "" {
		return fmt.Errorf("hook %s: no command", h)
	}
	for _, a := range h.Command {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("hook %s: the command contains a NUL byte", h)
		}
	}
	if h.Timeout < 0 {
		return fmt.Errorf("hook %s: negative timeout %v", h, h.Timeout)
	}
	switch h.OnError {
	case "", OnErrorFail, OnErrorContinue:
	default:
		return fmt.Errorf("hook %s: on-error %q: use %s or %s", h, h.OnError, OnErrorFail, OnErrorContinue)
	}
	switch h.Phase {
	case "", PhasePre, PhasePost:
	default:
		return fmt.Errorf("hook %s: phase %q: use %s or %s", h, h.Phase, PhasePre, PhasePost)
	}
	return nil
}

func (h Hook) timeout() time.Duration {
	if h.Timeout == 0 {
		return DefaultHookTimeout
	}
	return h.Timeout
}

// ParseHook parses a hook given on the command line:
//
//	namespace/pod[:container]=command args...
//
// The command is a JSON array of strings (["sh","-c","sync"]) or words
// split as a shell would, without expanding anything: blanks separate
// words, '…' quotes literally, "…" quotes with \" and \\ escapes, and a
// backslash outside quotes escapes the next character. Pipes and
// redirections need an explicit shell: sh -c 'fsfreeze -f /data'.
func ParseHook(s string) (Hook, error) {
	target, cmd, ok := strings.Cut(s, "=")
	if !ok {
		return Hook{}, fmt.Errorf("hook %q: want namespace/pod[:container]=command", target)
	}
	ns, pod, ok := strings.Cut(strings.TrimSpace(target), "/")
	if !ok {
		return Hook{}, fmt.Errorf("hook %q: want namespace/pod[:container]=command", target)
	}
	h := Hook{Namespace: ns}
	var withContainer bool
	h.Pod, h.Container, withContainer = strings.Cut(pod, ":")
	if withContainer && h.Container == "" {
		return Hook{}, fmt.Errorf("hook %q: empty container name", target)
	}
	words, err := parseCommand(cmd)
	if err != nil {
		return Hook{}, fmt.Errorf("hook %q: %w", target, err)
	}
	h.Command = words
	if err := h.Validate(); err != nil {
		return Hook{}, err
	}
	return h, nil
}

// parseCommand parses a JSON array of strings or shell-like words.
func parseCommand(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var words []string
		if err := json.Unmarshal([]byte(s), &words); err != nil {
			return nil, fmt.Errorf("command is not a JSON array of strings: %w", err)
		}
		if len(words) == 0 {
			return nil, errors.New("empty command")
		}
		return words, nil
	}
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}

// splitWords splits s into words like a POSIX shell does with quotes and
// backslashes, and nothing else.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("command ends with a backslash")
			}
			i++
			if s[i] != '\n' { // backslash-newline continues the line
				cur.WriteByte(s[i])
			}
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated ' quote in the command")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated \" quote in the command")
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// HooksFromPods returns the hooks that the running pods of the selected
// namespaces (nil selects all) declare in their annotations, pre hooks
// first, each phase sorted by namespace and pod. A pod with a malformed
// hook annotation is an error naming the pod and the annotation: a
// backup must not silently lose its consistency.
func HooksFromPods(ctx context.Context, cs kubernetes.Interface, namespace func(string) bool) ([]Hook, error) {
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var hooks []Hook
	var errs []error
	for i := range pods.Items {
		p := &pods.Items[i]
		if namespace != nil && !namespace(p.Namespace) {
			continue
		}
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		hs, err := HooksFromAnnotations(p.Namespace, p.Name, p.Annotations)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hooks = append(hooks, hs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.SliceStable(hooks, func(i, j int) bool {
		a, b := hooks[i], hooks[j]
		if a.Phase != b.Phase {
			return a.Phase == PhasePre
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Pod < b.Pod
	})
	return hooks, nil
}

// HooksFromAnnotations returns the pre and post hooks that the annotations
// of the pod ns/pod declare: for each phase, <phase>.hook.backup.bunker.dev/
// command (required for the hook to exist: a JSON array, or words as in
// ParseHook), container, timeout (a Go duration) and on-error (Fail or
// Continue).
func HooksFromAnnotations(ns, pod string, ann map[string]string) ([]Hook, error) {
	var hooks []Hook
	for _, phase := range []string{PhasePre, PhasePost} {
		cmd, ok := ann[HookAnnotation(phase, fieldCommand)]
		if !ok {
			for _, f := range []string{fieldContainer, fieldTimeout, fieldOnError} {
				if _, ok := ann[HookAnnotation(phase, f)]; ok {
					return nil, fmt.Errorf("pod %s/%s: annotation %s without %s", ns, pod, HookAnnotation(phase, f), HookAnnotation(phase, fieldCommand))
				}
			}
			continue
		}
		h := Hook{Namespace: ns, Pod: pod, Phase: phase, Container: ann[HookAnnotation(phase, fieldContainer)]}
		bad := func(field string, err error) error {
			return fmt.Errorf("pod %s/%s: annotation %s: %w", ns, pod, HookAnnotation(phase, field), err)
		}
		words, err := parseCommand(cmd)
		if err != nil {
			return nil, bad(fieldCommand, err)
		}
		h.Command = words
		if t, ok := ann[HookAnnotation(phase, fieldTimeout)]; ok {
			d, err := time.ParseDuration(strings.TrimSpace(t))
			if err != nil {
				return nil, bad(fieldTimeout, err)
			}
			if d <= 0 {
				return nil, bad(fieldTimeout, fmt.Errorf("%v is not positive", d))
			}
			h.Timeout = d
		}
		if v, ok := ann[HookAnnotation(phase, fieldOnError)]; ok {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case OnErrorFail:
				h.OnError = OnErrorFail
			case OnErrorContinue:
				h.OnError = OnErrorContinue
			default:
				return nil, bad(fieldOnError, fmt.Errorf("%q: use Fail or Continue", v))
			}
		}
		if err := h.Validate(); err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", ns, pod, err)
		}
		hooks = append(hooks, h)
	}
	return hooks, nil
}
