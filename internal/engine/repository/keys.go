package repository

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// KeyFile is the plaintext JSON of a key object (after its header). Only
// Data is secret, sealed with the password-derived key.
type KeyFile struct {
	Created  time.Time        `json:"created"`
	Host     string           `json:"host,omitempty"`
	User     string           `json:"user,omitempty"`
	KDF      crypto.KDFParams `json:"kdf"`
	Data     []byte           `json:"data"` // sealed 32-byte master key
	Name     string           `json:"-"`    // storage name
	Password string           `json:"-"`
}

func keyAAD(hdr []byte) []byte { return append(append([]byte(nil), hdr...), "MASTERKEY"...) }

func newKeyFile(master []byte, password string, kdf crypto.KDFParams) ([]byte, error) {
	kek, err := kdf.Derive(password)
	if err != nil {
		return nil, err
	}
	k, err := crypto.NewKey(kek)
	if err != nil {
		return nil, err
	}
	hdr := format.NewHeader(format.TypeKey, 0).Bytes()
	kf := KeyFile{Created: time.Now().UTC(), KDF: kdf, Data: k.Seal(nil, master, keyAAD(hdr))}
	kf.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		kf.User = u.Username
	}
	js, err := json.Marshal(kf)
	if err != nil {
		return nil, err
	}
	return append(hdr, js...), nil
}

// maxKeySize bounds what is read of one key object: a real one is a few
// hundred bytes, and an object the size of the store must not be loaded
// into memory to find that out.
const maxKeySize = 64 << 10

func parseKeyFile(b []byte) (*KeyFile, error) {
	if _, err := format.ParseHeader(b, format.TypeKey); err != nil {
		return nil, err
	}
	var kf KeyFile
	if err := json.Unmarshal(b[format.HeaderSize:], &kf); err != nil {
		return nil, fmt.Errorf("%w: key: %v", format.ErrCorrupt, err)
	}
	if err := kf.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("%w: key: %v", format.ErrCorrupt, err)
	}
	return &kf, nil
}

func (kf *KeyFile) open(hdr []byte, password string) ([]byte, error) {
	kek, err := kf.KDF.Derive(password)
	if err != nil {
		return nil, err
	}
	k, err := crypto.NewKey(kek)
	if err != nil {
		return nil, err
	}
	master, err := k.Open(nil, kf.Data, keyAAD(hdr))
	if err != nil {
		return nil, err
	}
	if len(master) != crypto.KeySize {
		return nil, fmt.Errorf("%w: key: master key of %d bytes", format.ErrCorrupt, len(master))
	}
	return master, nil
}

// loadKey reads and parses one key object, reading at most maxKeySize
// bytes of it. It returns the raw bytes too (their header is the AAD of
// the sealed master key). A key that cannot be decoded is an error
// wrapping ErrDamagedKey (and format.ErrNewerFormat for a key of a newer
// format); a failed read is an error wrapping neither.
func loadKey(ctx context.Context, be storage.Backend, name string) (*KeyFile, []byte, error) {
	var b []byte
	err := be.Load(ctx, storage.Handle{Type: storage.KeyFile, Name: name}, 0, 0, func(rd io.Reader) error {
		var err error
		b, err = io.ReadAll(io.LimitReader(rd, maxKeySize+1))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load key %s: %w", name, err)
	}
	if len(b) > maxKeySize {
		return nil, nil, fmt.Errorf("%w keys/%s: larger than %d bytes", ErrDamagedKey, name, maxKeySize)
	}
	kf, err := parseKeyFile(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w keys/%s: %w", ErrDamagedKey, name, err)
	}
	return kf, b, nil
}

// findKey tries every key object (or only the named one) with the password
// and returns the master key, the name of the key that opened it, and
// the key objects that could not be decoded (skipped; for warnings).
//
// Every key object is decoded, and its KDF parameters checked, before any
// key derivation; well-formed keys are then tried cheapest KDF first, so
// a planted key with costly parameters is never derived when a real key
// opens. The error is ErrWrongPassword only when well-formed keys were
// tried and none opened (or there is no key); when every key object is
// damaged, it names them and wraps ErrDamagedKey.
func findKey(ctx context.Context, be storage.Backend, password, only string) ([]byte, string, []error, error) {
	var names []string
	err := be.List(ctx, storage.KeyFile, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, "", nil, fmt.Errorf("list keys: %w", err)
	}
	slices.Sort(names)
	type candidate struct {
		name string
		kf   *KeyFile
		raw  []byte
	}
	var cands []candidate
	var damaged []error
	var newer error
	for _, name := range names {
		if only != "" && name != only {
			continue
		}
		kf, b, err := loadKey(ctx, be, name)
		switch {
		case err == nil:
			cands = append(cands, candidate{name, kf, b})
		case errors.Is(err, format.ErrNewerFormat):
			if newer == nil {
				newer = fmt.Errorf("key %s: %w", name, err)
			}
		case errors.Is(err, ErrDamagedKey):
			damaged = append(damaged, err)
		default:
			return nil, "", nil, err
		}
	}
	cost := func(p crypto.KDFParams) uint64 { return uint64(p.Time) * uint64(p.MemoryKiB) }
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(cost(a.kf.KDF), cost(b.kf.KDF)) })
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, "", nil, err
		}
		master, err := c.kf.open(c.raw[:format.HeaderSize], password)
		if err == nil {
			return master, c.name, damaged, nil
		}
		if !errors.Is(err, crypto.ErrUnauthenticated) {
			// Opened with the password, but not a master key: damaged.
			damaged = append(damaged, fmt.Errorf("%w keys/%s: %w", ErrDamagedKey, c.name, err))
		}
	}
	switch {
	case newer != nil:
		return nil, "", nil, newer
	case len(cands) > 0 || len(damaged) == 0:
		if len(damaged) > 0 {
			return nil, "", nil, fmt.Errorf("%w; key objects that cannot be decoded were skipped: %w", ErrWrongPassword, errors.Join(damaged...))
		}
		return nil, "", nil, ErrWrongPassword
	}
	return nil, "", nil, fmt.Errorf("no key object can be decoded, so no password can open the repository (put back an intact copy of a key object): %w", errors.Join(damaged...))
}

// AddKey stores a new key object wrapping the master key with password.
// It returns the key's name.
func (r *Repository) AddKey(ctx context.Context, password string, kdf crypto.KDFParams) (string, error) {
	b, err := newKeyFile(r.master, password, kdf)
	if err != nil {
		return "", err
	}
	name := pack.Name(pack.Hash(b))
	if err := r.be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: name}, b, storage.SaveOptions{}); err != nil {
		return "", fmt.Errorf("save key: %w", err)
	}
	return name, nil
}

// KeyInfo describes one key for `key list`.
type KeyInfo struct {
	Name    string    `json:"id"`
	Current bool      `json:"current"`
	Created time.Time `json:"created"`
	Host    string    `json:"host"`
	User    string    `json:"user"`
	KDF     string    `json:"kdf"`
	// Damaged says why a key object cannot be decoded ("" if it can);
	// such a key opens nothing and may be removed.
	Damaged string `json:"damaged,omitempty"`
}

// Keys lists the key objects, damaged ones included (with Damaged set).
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var names []string
	err := r.be.List(ctx, storage.KeyFile, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var out []KeyInfo
	for _, name := range names {
		kf, _, err := loadKey(ctx, r.be, name)
		if err != nil {
			if !errors.Is(err, ErrDamagedKey) && !errors.Is(err, format.ErrNewerFormat) {
				return nil, err
			}
			out = append(out, KeyInfo{Name: name, Damaged: err.Error()})
			continue
		}
		out = append(out, KeyInfo{Name: name, Current: name == r.keyName, Created: kf.Created, Host: kf.Host, User: kf.User,
			KDF: fmt.Sprintf("%s t=%d m=%dKiB p=%d", kf.KDF.Algorithm, kf.KDF.Time, kf.KDF.MemoryKiB, kf.KDF.Threads)})
	}
	slices.SortStableFunc(out, func(a, b KeyInfo) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RemoveKey deletes a key object. The key in use cannot be removed, nor
// the last one that decodes; a damaged one can.
func (r *Repository) RemoveKey(ctx context.Context, name string) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	var match []KeyInfo
	good := 0
	for _, k := range keys {
		if k.Damaged == "" {
			good++
		}
		if len(name) >= 4 && len(k.Name) >= len(name) && k.Name[:len(name)] == name {
			match = append(match, k)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("no key %q", name)
	case len(match) > 1:
		return fmt.Errorf("key prefix %q is ambiguous", name)
	case match[0].Name == r.keyName:
		return fmt.Errorf("refusing to remove key %s: it is the key in use", shortName(match[0].Name))
	case match[0].Damaged == "" && good == 1:
		return errors.New("refusing to remove the last key")
	}
	return r.be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: match[0].Name})
}

// ChangePassword adds a key for the new password and removes the one in use.
func (r *Repository) ChangePassword(ctx context.Context, password string, kdf crypto.KDFParams) (string, error) {
	name, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		return "", err
	}
	old := r.keyName
	if err := r.be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: old}); err != nil {
		return name, fmt.Errorf("new key %s added, but removing old key %s failed: %w", shortName(name), shortName(old), err)
	}
	r.keyName = name
	return name, nil
}

// DamagedKeys describes the key objects that Open skipped because they
// cannot be decoded (each error wraps ErrDamagedKey and names the
// object), for the caller to warn about.
func (r *Repository) DamagedKeys() []error { return slices.Clone(r.damagedKeys) }

// KeyName is the name of the key that opened the repository.
func (r *Repository) KeyName() string { return r.keyName }
