// Command reqcount is a counting reverse proxy for S3 benchmarks: it
// forwards every request to one S3 endpoint unchanged (the Host header
// too, so SigV4 signatures still verify) and counts the requests by kind
// and the bytes each way.
//
//	reqcount -listen 127.0.0.1:9100 -target http://127.0.0.1:9000 -admin 127.0.0.1:9101
//
// The admin listener answers GET /counts with one line of
// space-separated counters in the order of GET /fields; /counts?reset=1
// also sets them back to zero (atomically per counter, so call it only
// between the steps being measured). bench/s3/run.sh drives it.
//
// Kinds, for path-style requests (/bucket/key?query), which is what both
// minio-go (Bunker) and restic send to a loopback endpoint:
//
//	put       PUT of an object or of a multipart part
//	post      POST (create or complete a multipart upload, multi-delete)
//	get       GET of an object (ranged or not)
//	ranged    the part of get that carried a Range header
//	head      HEAD of an object
//	list      GET of a bucket listing (list-type, versions, uploads, or no
//	          query) and of the service (list buckets)
//	delete    DELETE of an object (or abort of a multipart upload)
//	bucket    any other request on a bucket itself: create, HEAD, location,
//	          versioning, object-lock configuration and the like
//	errors    responses with status 400 or above, and proxy failures
//	bytes_up  request body bytes (uploads, as sent: aws-chunked framing included)
//	bytes_down response body bytes (downloads, listings)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// counter indexes.
const (
	cPut = iota
	cPost
	cGet
	cRanged
	cHead
	cList
	cDelete
	cBucket
	cErrors
	cBytesUp
	cBytesDown
	nCounters
)

var fieldNames = [nCounters]string{"put", "post", "get", "ranged", "head", "list", "delete", "bucket", "errors", "bytes_up", "bytes_down"}

// counters are the proxy's tallies; every field is updated atomically.
type counters [nCounters]atomic.Int64

// classify returns the counter of a request.
func classify(r *http.Request) int {
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(p, "/")
	q := r.URL.Query()
	objectLevel := key != ""
	switch r.Method {
	case http.MethodPut:
		if objectLevel {
			return cPut
		}
	case http.MethodPost:
		return cPost
	case http.MethodGet:
		if objectLevel {
			return cGet
		}
		if bucket == "" || len(q) == 0 || q.Has("list-type") || q.Has("versions") || q.Has("uploads") ||
			q.Has("prefix") || q.Has("delimiter") || q.Has("marker") {
			return cList
		}
	case http.MethodHead:
		if objectLevel {
			return cHead
		}
	case http.MethodDelete:
		if objectLevel {
			return cDelete
		}
	}
	return cBucket
}

// countingBody counts the bytes read through it into one counter.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// bufferPool hands the proxy 256 KiB copy buffers (its default is
// 32 KiB), so that copying large objects costs few system calls.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 256<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

func newProxy(target *url.URL, c *counters) *httputil.ReverseProxy {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 1024 // the default of 2 would open a connection per request
	tr.DisableCompression = true
	tr.ReadBufferSize = 256 << 10
	tr.WriteBufferSize = 256 << 10
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // signed by the client
			if pr.Out.Body != nil {
				pr.Out.Body = countingBody{pr.Out.Body, &c[cBytesUp]}
			}
		},
		Transport:  tr,
		BufferPool: &bufferPool{},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode >= 400 {
				c[cErrors].Add(1)
			}
			resp.Body = countingBody{resp.Body, &c[cBytesDown]}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c[cErrors].Add(1)
			log.Printf("reqcount: %s %s: %v", r.Method, r.URL.Path, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9100", "address the proxy listens on")
	target := flag.String("target", "", "URL of the S3 endpoint, e.g. http://127.0.0.1:9000")
	admin := flag.String("admin", "127.0.0.1:9101", "address of the counters endpoint (GET /counts[?reset=1], GET /fields)")
	fields := flag.Bool("fields", false, "print the names of the counters, in the order of /counts, and exit")
	flag.Parse()
	log.SetFlags(0)
	if *fields {
		fmt.Println(strings.Join(fieldNames[:], " "))
		return
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		log.Fatalf("reqcount: -target %q: want http://host:port", *target)
	}

	var c counters
	proxy := newProxy(u, &c)
	front := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := classify(r)
			c[k].Add(1)
			if k == cGet && r.Header.Get("Range") != "" {
				c[cRanged].Add(1)
			}
			proxy.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: time.Minute,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fields", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, strings.Join(fieldNames[:], " "))
	})
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, r *http.Request) {
		reset := r.URL.Query().Has("reset")
		vals := make([]string, nCounters)
		for i := range c {
			var v int64
			if reset {
				v = c[i].Swap(0)
			} else {
				v = c[i].Load()
			}
			vals[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(w, strings.Join(vals, " "))
	})
	back := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	for _, s := range []struct {
		srv  *http.Server
		addr string
	}{{front, *listen}, {back, *admin}} {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			log.Fatalf("reqcount: %v", err)
		}
		go func() { errc <- s.srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Printf("reqcount: %v", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = front.Shutdown(sctx)
	_ = back.Shutdown(sctx)
}
