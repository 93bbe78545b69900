package mongodb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MaxDocumentSize is the largest document a .bson file may hold: the
// server's 16 MiB plus the 16 KiB it allows itself for internal
// documents such as oplog entries.
const MaxDocumentSize = 16<<20 + 16<<10

// minDocumentSize is an empty document: its length and the terminator.
const minDocumentSize = 5

// DocReader reads the documents of a .bson file (concatenated BSON
// documents, as mongodump writes them).
type DocReader struct {
	r   *bufio.Reader
	off int64
	// Verify checks every document's structure before returning it
	// (default on via NewDocReader).
	Verify bool
}

// NewDocReader reads documents from r.
func NewDocReader(r io.Reader) *DocReader {
	return &DocReader{r: bufio.NewReaderSize(r, 64<<10), Verify: true}
}

// Offset is the byte offset of the next document.
func (d *DocReader) Offset() int64 { return d.off }

// Next returns the next document in a new slice the caller owns, or
// io.EOF after the last one. A file that ends inside a document, or a
// malformed document, is an error naming its offset.
func (d *DocReader) Next() (bson.Raw, error) {
	var hdr [4]byte
	n, err := io.ReadFull(d.r, hdr[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, d.fail(fmt.Errorf("truncated after %d bytes of a document header: %w", n, err))
	}
	size := int64(int32(binary.LittleEndian.Uint32(hdr[:])))
	if size < minDocumentSize || size > MaxDocumentSize {
		return nil, d.fail(fmt.Errorf("invalid document size %d", size))
	}
	doc := make([]byte, size)
	copy(doc, hdr[:])
	if n, err := io.ReadFull(d.r, doc[4:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, d.fail(fmt.Errorf("truncated document: %d of %d bytes: %w", 4+n, size, err))
	}
	if doc[size-1] != 0 {
		return nil, d.fail(errors.New("document does not end in a NUL byte"))
	}
	if d.Verify {
		if err := bson.Raw(doc).Validate(); err != nil {
			return nil, d.fail(fmt.Errorf("malformed document: %w", err))
		}
	}
	d.off += size
	return doc, nil
}

func (d *DocReader) fail(err error) error {
	return fmt.Errorf("at byte %d: %w", d.off, err)
}

// docStream is an io.Reader over documents handed out one at a time by
// next (a cursor): it copies each document's bytes as they are, without
// decoding. next returns io.EOF after the last document; the slice it
// returns need only stay valid until it is called again.
type docStream struct {
	next  func() ([]byte, error)
	cur   []byte
	docs  int64
	bytes int64
	err   error
}

func (s *docStream) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.cur) == 0 {
			if s.err != nil {
				break
			}
			doc, err := s.next()
			if err != nil {
				s.err = err
				break
			}
			if len(doc) < minDocumentSize || int64(len(doc)) != int64(int32(binary.LittleEndian.Uint32(doc))) {
				s.err = fmt.Errorf("server sent a malformed document (%d bytes) after %d documents", len(doc), s.docs)
				break
			}
			s.cur = doc
			s.docs++
		}
		c := copy(p[n:], s.cur)
		s.cur = s.cur[c:]
		n += c
		s.bytes += int64(c)
	}
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}
