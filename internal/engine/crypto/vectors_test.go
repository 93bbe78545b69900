package crypto

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Golden vectors of testdata/vectors: an AES-256-GCM message sealed once,
// and the argon2id key-encryption key of password "test".
func TestVectors(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("../../../testdata/vectors/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var v struct {
		Password string    `json:"password"`
		KDF      KDFParams `json:"kdf"`
		KEK      string    `json:"kek"`
		Seal     struct {
			Key       string `json:"key"`
			AAD       string `json:"aad_hex"`
			Plaintext string `json:"plaintext_hex"`
			Sealed    string `json:"sealed_file"`
		} `json:"seal"`
	}
	if err := json.Unmarshal(read("vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	kek, err := v.KDF.Derive(v.Password)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(kek) != v.KEK || v.KEK != "ab6b1b417bd456549122accf993398847ff357ca709a209af2149028c844a27e" {
		t.Fatalf("argon2id(%q, t=%d m=%d p=%d) = %x, want %s", v.Password, v.KDF.Time, v.KDF.MemoryKiB, v.KDF.Threads, kek, v.KEK)
	}
	sk, _ := hex.DecodeString(v.Seal.Key)
	aad, _ := hex.DecodeString(v.Seal.AAD)
	pt, _ := hex.DecodeString(v.Seal.Plaintext)
	k, err := NewKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	sealed := read(v.Seal.Sealed)
	if len(sealed) != len(pt)+Overhead {
		t.Fatalf("sealed length %d", len(sealed))
	}
	got, err := k.Open(nil, sealed, aad)
	if err != nil || string(got) != string(pt) {
		t.Fatalf("open: %q, %v", got, err)
	}
}
