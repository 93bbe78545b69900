package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// findKey tries every key object (or only the named one) with the password
// and returns the master key and the name of the key that opened it.
func findKey(ctx context.Context, be storage.Backend, password, only string) ([]byte, string, error) {
	var names []string
	err := be.List(ctx, storage.KeyFile, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list keys: %w", err)
	}
	slices.Sort(names)
	var firstErr error
	for _, name := range names {
		if only != "" && name != only {
			continue
		}
		b, err := storage.LoadAll(ctx, be, storage.Handle{Type: storage.KeyFile, Name: name})
		if err != nil {
			return nil, "", fmt.Errorf("load key %s: %w", name, err)
		}
		kf, err := parseKeyFile(b)
		if err != nil {
			if errors.Is(err, format.ErrNewerFormat) && firstErr == nil {
				firstErr = fmt.Errorf("key %s: %w", name, err)
			}
			continue
		}
		master, err := kf.open(b[:format.HeaderSize], password)
		if err == nil {
			return master, name, nil
		}
		if !errors.Is(err, crypto.ErrUnauthenticated) && firstErr == nil {
			firstErr = fmt.Errorf("key %s: %w", name, err)
		}
	}
	if firstErr != nil {
		return nil, "", firstErr
	}
	return nil, "", ErrWrongPassword
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
}

// Keys lists the key objects.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.be.List(ctx, storage.KeyFile, func(fi storage.FileInfo) error {
		b, err := storage.LoadAll(ctx, r.be, storage.Handle{Type: storage.KeyFile, Name: fi.Name})
		if err != nil {
			return fmt.Errorf("load key %s: %w", fi.Name, err)
		}
		kf, err := parseKeyFile(b)
		if err != nil {
			return fmt.Errorf("key %s: %w", fi.Name, err)
		}
		out = append(out, KeyInfo{Name: fi.Name, Current: fi.Name == r.keyName, Created: kf.Created, Host: kf.Host, User: kf.User,
			KDF: fmt.Sprintf("%s t=%d m=%dKiB p=%d", kf.KDF.Algorithm, kf.KDF.Time, kf.KDF.MemoryKiB, kf.KDF.Threads)})
		return nil
	})
	slices.SortFunc(out, func(a, b KeyInfo) int { return a.Created.Compare(b.Created) })
	return out, err
}

// RemoveKey deletes a key object. The key in use cannot be removed, nor
// the last one.
func (r *Repository) RemoveKey(ctx context.Context, name string) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	var match []string
	for _, k := range keys {
		if len(name) >= 4 && len(k.Name) >= len(name) && k.Name[:len(name)] == name {
			match = append(match, k.Name)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("no key %q", name)
	case len(match) > 1:
		return fmt.Errorf("key prefix %q is ambiguous", name)
	case match[0] == r.keyName:
		return fmt.Errorf("refusing to remove key %s: it is the key in use", shortName(match[0]))
	case len(keys) == 1:
		return errors.New("refusing to remove the last key")
	}
	return r.be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: match[0]})
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

// KeyName is the name of the key that opened the repository.
func (r *Repository) KeyName() string { return r.keyName }
