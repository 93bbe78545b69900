package format

import "fmt"

// ID is a 32-byte blob identifier (keyed BLAKE3-256 of the plaintext).
type ID [32]byte

// String returns the lower-case hex form.
func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// MarshalText encodes the ID as hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a 64-character hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("invalid blob ID %q: want 64 hex digits", truncateText(b))
	}
	for i := 0; i < 32; i++ {
		hi, ok1 := unhex(b[2*i])
		lo, ok2 := unhex(b[2*i+1])
		if !ok1 || !ok2 {
			return fmt.Errorf("invalid blob ID %q: not hex", truncateText(b))
		}
		id[i] = hi<<4 | lo
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func truncateText(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// IsZero reports whether the ID is all zeros (unset).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a 64-digit hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	err := id.UnmarshalText([]byte(s))
	return id, err
}

// Short returns the first 8 hex digits, for messages.
func (id ID) Short() string { return id.String()[:8] }
