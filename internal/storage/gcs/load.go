package gcs

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// Load calls fn with a reader of length bytes of the object from offset
// (length 0: to the end), streamed from one ranged request. A range past
// the end of the object is a permanent error.
//
// A reply cut short is read on from where it broke, from the same
// generation of the object, as the cloud.google.com/go/storage client
// did; a whole object read is checked against the CRC32C the service
// sends with it.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := b.check(ctx, "load", h); err != nil {
		return err
	}
	if length < 0 || offset < 0 {
		return storage.Permanent(b.errorf("load", h, fmt.Errorf("invalid range: offset %d, length %d", offset, length)))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &rangeReader{b: b, ctx: ctx, key: b.keys.Key(h), offset: offset, length: int64(length), gen: -1, size: -1}
	if err := b.retry(ctx, true, r.open); err != nil {
		if httpCode(err) != http.StatusRequestedRangeNotSatisfiable {
			return b.errorf("load", h, mapErr(err, false))
		}
		// The offset is at or past the end. Reading nothing from the
		// very end is fine, as for a file; anything else is an error.
		fi, serr := b.Stat(ctx, h)
		if serr != nil {
			return serr
		}
		if err := objstore.LoadAtEnd(fi.Size, length, offset, fn); err != nil {
			return b.errorf("load", h, err)
		}
		return nil
	}
	defer r.close()
	if size := r.size; size >= 0 && (offset > size || length > 0 && offset+int64(length) > size) {
		return storage.Permanent(b.errorf("load", h, fmt.Errorf("range offset %d, length %d is past the end of the %d-byte object", offset, length, size)))
	}
	rd := &objstore.ReplyReader{R: r}
	if err := fn(rd); err != nil {
		if rd.Err == nil {
			return b.errorf("load", h, err) // fn's own error
		}
		return b.errorf("load", h, mapErr(err, false))
	}
	return nil
}

// errNotGCS is the error of a reply that is not what Cloud Storage sends
// (a header that does not parse, a range other than the one asked for).
// It quotes nothing of the reply, and is transient, as the errors of
// decoding a reply are.
var errNotGCS = &objstore.Error{Msg: "the reply is not what Cloud Storage sends (is the endpoint Cloud Storage?)", Err: errors.New("unexpected reply")}

// errNotPartial is the error of a ranged read answered with the whole
// object.
var errNotPartial = errors.New("the reply to a ranged read is not partial content (is the endpoint Cloud Storage?)")

// rangeReader reads a range of an object from the JSON API's media
// downloads, reopening the rest of the range after a transient failure.
type rangeReader struct {
	b      *Backend
	ctx    context.Context
	key    string
	offset int64 // of the range
	length int64 // of the range; 0: to the end

	body   io.ReadCloser // nil when closed
	opened bool          // a reply was parsed
	gen    int64         // generation of the first reply; -1 unknown
	size   int64         // size of the object; -1 unknown
	seen   int64         // bytes read so far
	remain int64         // bytes the range still holds; -1 unknown
	fails  int           // failed reads since the last one that read something

	checkCRC bool
	wantCRC  uint32
	crc      uint32
	err      error // sticky error of Read
}

// open requests the rest of the range, from r.seen on.
func (r *rangeReader) open() error {
	start := r.offset + r.seen
	call := r.b.svc.Objects.Get(r.b.cfg.Bucket, r.key).Context(r.ctx)
	if r.gen > 0 {
		call = call.Generation(r.gen)
	}
	switch {
	case r.length > 0:
		call.Header().Set("Range", fmt.Sprintf("bytes=%d-%d", start, r.offset+r.length-1))
	case start > 0:
		call.Header().Set("Range", fmt.Sprintf("bytes=%d-", start))
	}
	res, err := call.Download()
	if err != nil {
		return err
	}
	if err := r.parse(res, start); err != nil {
		_ = res.Body.Close()
		return err
	}
	r.body = res.Body
	return nil
}

// parse reads what the reply to a request for the range from start says
// about the object.
func (r *rangeReader) parse(res *http.Response, start int64) error {
	size := res.ContentLength
	if res.StatusCode == http.StatusPartialContent {
		from, total, ok := contentRange(res.Header.Get("Content-Range"))
		if !ok || from != start {
			return errNotGCS
		}
		size = total
	} else if start > 0 {
		return errNotPartial
	}
	if r.opened {
		return nil
	}
	r.opened = true
	if g := res.Header.Get("X-Goog-Generation"); g != "" {
		gen, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return errNotGCS
		}
		r.gen = gen
	}
	r.size = size
	switch {
	case r.length > 0:
		r.remain = r.length
	case size >= 0:
		r.remain = max(size-r.offset, 0)
	default:
		r.remain = -1
	}
	// Only a whole object can be checked against its CRC32C, and only
	// as stored: not when it was decompressed on its way.
	if r.offset == 0 && r.length == 0 && res.StatusCode == http.StatusOK && !res.Uncompressed &&
		res.Header.Get("X-Goog-Stored-Content-Encoding") != "gzip" {
		r.wantCRC, r.checkCRC = replyCRC(res.Header)
	}
	return nil
}

// contentRange parses "bytes FIRST-LAST/TOTAL".
func contentRange(s string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, z, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(z, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, false
	}
	return first, total, true
}

// replyCRC is the CRC32C of the object that an X-Goog-Hash header
// carries ("crc32c=BASE64,md5=BASE64").
func replyCRC(h http.Header) (uint32, bool) {
	for _, v := range h.Values("X-Goog-Hash") {
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if k != "crc32c" {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(val)
			if err != nil || len(b) != 4 {
				return 0, false
			}
			return binary.BigEndian.Uint32(b), true
		}
	}
	return 0, false
}

// Read reads the range, no further than its end.
func (r *rangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.remain == 0 {
		return 0, r.finish()
	}
	if r.remain > 0 && int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	for {
		n, err := r.body.Read(p)
		r.seen += int64(n)
		if r.remain > 0 {
			r.remain -= int64(n)
		}
		if r.checkCRC {
			r.crc = crc32.Update(r.crc, castagnoli, p[:n])
		}
		if n > 0 {
			r.fails = 0
		}
		switch {
		case err == nil && r.remain == 0:
			return n, r.finish()
		case err == nil:
			return n, nil
		case err == io.EOF && r.remain <= 0:
			r.remain = 0
			return n, r.finish()
		case err == io.EOF:
			err = io.ErrUnexpectedEOF // the reply ended before the range
		}
		if rerr := r.reopen(err); rerr != nil {
			r.err = rerr
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// finish ends a range read all of: io.EOF, or the error of a CRC32C
// that does not match.
func (r *rangeReader) finish() error {
	r.err = io.EOF
	if r.checkCRC && r.crc != r.wantCRC {
		r.err = fmt.Errorf("the data read does not match its CRC32C (%08x, want %08x)", r.crc, r.wantCRC)
	}
	return r.err
}

// reopen requests the rest of the range after a read failed with err; it
// returns the error to report when that cannot help (err is not
// transient, or reads failed too often in a row) or fails itself.
func (r *rangeReader) reopen(err error) error {
	r.fails++
	if !transient(err) || r.fails >= r.b.attempts {
		return err
	}
	r.close()
	if !sleep(r.ctx, r.b.delay) {
		return err
	}
	return r.b.retry(r.ctx, true, r.open)
}

func (r *rangeReader) close() {
	if r.body != nil {
		_ = r.body.Close()
		r.body = nil
	}
}
