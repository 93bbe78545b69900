package daemon

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestLimitListener: at most n connections are held; the next is
// accepted when one closes (closing twice gives back one slot); Close
// ends a waiting Accept.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	accepted := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	for range 4 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no connection accepted")
		}
		return nil
	}
	held := []net.Conn{next(), next()}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were held")
	case <-time.After(100 * time.Millisecond):
	}
	held[0].Close()
	held[0].Close() // a second Close gives back nothing more
	held = append(held, next())
	select {
	case <-accepted:
		t.Fatal("one Close gave back two slots")
	case <-time.After(100 * time.Millisecond):
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the waiting Accept")
	}
	for _, c := range held {
		c.Close()
	}
}
