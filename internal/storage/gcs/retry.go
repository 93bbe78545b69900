package gcs

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"

	"google.golang.org/api/googleapi"
)

// maxRetryDelay bounds the pause between two tries of a request.
const maxRetryDelay = 2 * time.Second

// retry calls call until it succeeds, fails with an error that trying
// again cannot help (see transient), or has been tried b.attempts times;
// a call that is not idempotent is tried once. The pauses grow from
// b.delay by doubling up to maxRetryDelay, each a random part of that
// (full jitter), as the cloud.google.com/go/storage client paused. It
// returns the error of the last try. These few tries only smooth over a
// dropped connection or a busy moment of the service: the storage retry
// decorator above the backend decides about longer outages.
func (b *Backend) retry(ctx context.Context, idempotent bool, call func() error) error {
	delay := b.delay
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || !idempotent || attempt >= b.attempts || !transient(err) {
			return err
		}
		if !sleep(ctx, delay) {
			return err
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// sleep pauses for a random duration in (0, max], or until ctx ends; it
// reports whether the pause ended first.
func sleep(ctx context.Context, max time.Duration) bool {
	t := time.NewTimer(1 + rand.N(max))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// transient reports whether a request that failed with err may succeed
// when sent again: 408, 429 and 5xx replies, broken or refused
// connections and cut replies, as the cloud.google.com/go/storage client
// judged them (its ShouldRetry).
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == 408 || ge.Code == 429 || ge.Code >= 500 && ge.Code < 600
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		msg := err.Error()
		for _, s := range []string{"connection refused", "connection reset", "broken pipe", "client connection lost", "server closed idle connection"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
		// An EOF inside a net/http error is a connection the server
		// closed before replying (golang/go#53472).
		if errors.Is(err, io.EOF) {
			return true
		}
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsTemporary {
		return true
	}
	var tmp interface{ Temporary() bool }
	return errors.As(err, &tmp) && tmp.Temporary()
}
