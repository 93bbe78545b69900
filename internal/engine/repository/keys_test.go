package repository_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// damagedKeys returns key objects that cannot be decoded, by name: the
// names sort before any real key's, so they are met first.
func damagedKeys(good []byte) map[string][]byte {
	hdr := format.NewHeader(format.TypeKey, 0).Bytes()
	kdf := func(js string) []byte {
		return append(bytes.Clone(hdr), `{"kdf":`+js+`,"data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`...)
	}
	salt := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	return map[string][]byte{
		"00garbage":   []byte("this is not a key object"),
		"01truncated": good[:len(good)/2],
		"02empty":     nil,
		"03badjson":   append(bytes.Clone(hdr), `{"kdf":`...),
		// Accepted (and derived) before: 4 GiB and 100 passes.
		"04memory":  kdf(`{"alg":"argon2id","time":1,"memory":4194304,"threads":1,"salt":` + salt + `}`),
		"05time":    kdf(`{"alg":"argon2id","time":100,"memory":64,"threads":1,"salt":` + salt + `}`),
		"06scrypt":  kdf(`{"alg":"scrypt","time":1,"memory":64,"threads":1,"salt":` + salt + `}`),
		"07huge":    append(bytes.Clone(good), bytes.Repeat([]byte(" "), 1<<20)...),
		"08nothdr":  append([]byte("BNKR\x01\x01\x00\x00"), good[format.HeaderSize:]...),
		"09badsalt": kdf(`{"alg":"argon2id","time":1,"memory":64,"threads":1,"salt":"AA=="}`),
	}
}

// TestDamagedKeys: a key object that cannot be decoded is not a wrong
// password (finding 8 of issue 14). With a good key beside it, opening
// works and names it among DamagedKeys; with a wrong password the error
// stays ErrWrongPassword (well-formed keys were tried) and mentions it;
// with only damaged keys the error is ErrDamagedKey and names each one.
// The hostile KDF parameters are refused before any derivation: were they
// derived, argon2id would take 4 GiB or 100 passes.
func TestDamagedKeys(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := repository.Init(ctx, be, "pw", repository.Options{KDF: crypto.WeakKDF()})
	check(t, err)
	goodName := r.KeyName()
	good, err := storage.LoadAll(ctx, be, storage.Handle{Type: storage.KeyFile, Name: goodName})
	check(t, err)
	bad := damagedKeys(good)
	for name, b := range bad {
		check(t, be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: name}, b, storage.SaveOptions{}))
	}

	r2, err := repository.Open(ctx, be, "pw", "")
	if err != nil {
		t.Fatalf("a good key beside damaged ones does not open: %v", err)
	}
	if r2.KeyName() != goodName {
		t.Errorf("opened with key %s, want %s", r2.KeyName(), goodName)
	}
	// Fatal from here: the steps below try every key, and one that
	// accepted 04memory or 05time would run argon2id over 4 GiB or 100
	// times.
	dk := r2.DamagedKeys()
	if len(dk) != len(bad) {
		t.Fatalf("DamagedKeys has %d entries, want %d: %v", len(dk), len(bad), dk)
	}
	for _, e := range dk {
		if !errors.Is(e, repository.ErrDamagedKey) {
			t.Errorf("%v does not wrap ErrDamagedKey", e)
		}
	}
	joined := errors.Join(dk...).Error()
	for name := range bad {
		if !strings.Contains(joined, "keys/"+name) {
			t.Fatalf("damaged key %s is not named:\n%s", name, joined)
		}
	}

	_, err = repository.Open(ctx, be, "not the password", "")
	if !errors.Is(err, repository.ErrWrongPassword) || !strings.Contains(err.Error(), "keys/00garbage") {
		t.Errorf("wrong password beside damaged keys: %v", err)
	}

	// The hint picks one key: a damaged one is not a wrong password.
	_, err = repository.Open(ctx, be, "pw", "04memory")
	if !errors.Is(err, repository.ErrDamagedKey) || errors.Is(err, repository.ErrWrongPassword) || !strings.Contains(err.Error(), "keys/04memory") {
		t.Errorf("hint on a damaged key: %v", err)
	}

	// key list shows the damaged keys, and key remove removes them.
	keys, err := r2.Keys(ctx)
	check(t, err)
	n := 0
	for _, k := range keys {
		if k.Damaged != "" {
			n++
		}
	}
	if n != len(bad) || len(keys) != len(bad)+1 {
		t.Errorf("Keys lists %d keys, %d damaged; want %d, %d", len(keys), n, len(bad)+1, len(bad))
	}
	check(t, r2.RemoveKey(ctx, "00garbage"))
	delete(bad, "00garbage")

	// Only damaged keys left: the password is not to blame.
	check(t, be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: goodName}))
	_, err = repository.Open(ctx, be, "pw", "")
	if !errors.Is(err, repository.ErrDamagedKey) || errors.Is(err, repository.ErrWrongPassword) {
		t.Fatalf("only damaged keys: %v, want ErrDamagedKey and not ErrWrongPassword", err)
	}
	for name := range bad {
		if !strings.Contains(err.Error(), "keys/"+name) {
			t.Errorf("error does not name keys/%s:\n%v", name, err)
		}
	}
}
