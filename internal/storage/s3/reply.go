package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// What a reply holds is quoted in errors only when it is the store's own
// error document (the S3 XML <Error>), and then only its code and a
// cleaned, bounded message: errors end up in logs, in statuses a tenant
// can read and in API replies, and the endpoint may be some other HTTP
// service (an internal one, named to read it through error messages).

const (
	// maxMessageLen bounds the message of an error document we quote.
	maxMessageLen = 256
	// maxErrorBody is the largest error reply body read; a larger one is
	// no S3 error document.
	maxErrorBody = 64 << 10
)

// replyFilter is the transport under minio-go. minio-go puts up to 1 KiB
// of an error reply body it cannot parse into its error's message, and
// the reason phrase into its code; so every reply with a status of 300 or
// more gets the standard reason phrase, and its body is replaced: by a
// clean S3 error document (code, bounded message, region) when it is one,
// else by nothing. The x-minio-error-code and -desc headers (MinIO's
// error code and message of HEAD replies) are kept only when clean.
type replyFilter struct{ next http.RoundTripper }

func (f replyFilter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 {
		return resp, err
	}
	resp.Status = fmt.Sprintf("%03d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	_ = resp.Body.Close()
	var doc []byte
	if rerr == nil && len(body) <= maxErrorBody {
		doc = errorDoc(body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(doc))
	resp.ContentLength = int64(len(doc))
	resp.Header.Set("Content-Length", strconv.Itoa(len(doc)))
	resp.Header.Del("Content-Encoding")
	if c := resp.Header.Get("X-Minio-Error-Code"); c != "" && !objstore.IsCode(c) {
		resp.Header.Del("X-Minio-Error-Code")
		resp.Header.Del("X-Minio-Error-Desc")
	}
	if d := resp.Header.Get("X-Minio-Error-Desc"); d != "" {
		resp.Header.Set("X-Minio-Error-Desc", objstore.CleanText(d, maxMessageLen))
	}
	return resp, nil
}

// s3Error is the part of an S3 error document that is kept.
type s3Error struct {
	XMLName xml.Name `xml:"Error"`
	Code    string
	Message string `xml:",omitempty"`
	Region  string `xml:",omitempty"`
}

// errorDoc returns a clean copy of the S3 error document body, or nil if
// body is not one.
func errorDoc(body []byte) []byte {
	var e s3Error
	if xml.Unmarshal(body, &e) != nil || !objstore.IsCode(e.Code) {
		return nil
	}
	e.Message = objstore.CleanText(e.Message, maxMessageLen)
	if !isRegion(e.Region) {
		e.Region = ""
	}
	doc, err := xml.Marshal(e)
	if err != nil {
		return nil
	}
	return doc
}

// isRegion reports whether s looks like a region name ("eu-west-1").
func isRegion(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isDecodeErr reports whether err is the error of decoding a reply's XML
// (or a value in it), whose message quotes bytes of the reply.
func isDecodeErr(err error) bool {
	var te *xml.TagPathError
	return objstore.IsXMLError(err) || errors.As(err, &te) || objstore.IsValueError(err)
}
