package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/chunker"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

func FuzzParseKeyFile(f *testing.F) {
	f.Add(readVector(f, "key-test.bin"))
	hdr := format.NewHeader(format.TypeKey, 0).Bytes()
	f.Add(append(slices.Clone(hdr), `{"kdf":{"alg":"argon2id","time":1,"memory":8,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"data":""}`...))
	f.Add(append(slices.Clone(hdr), `{"kdf":{"alg":"argon2id","time":0,"memory":99999999,"threads":0,"salt":null}}`...))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeyFile(b)
		if err != nil {
			if !errors.Is(err, format.ErrCorrupt) && !errors.Is(err, format.ErrNewerFormat) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrNewerFormat", err)
			}
			return
		}
		if err := kf.KDF.Validate(); err != nil {
			t.Fatalf("accepted invalid KDF parameters: %v", err)
		}
		// Opening runs argon2id with the file's parameters: only try it
		// when they are cheap (a hostile key file can ask for 4 GiB and
		// 100 passes; see the threat model in docs/FORMAT.md).
		if kf.KDF.Time <= 2 && kf.KDF.MemoryKiB <= 256 && kf.KDF.Threads <= 4 {
			m, err := kf.open(b[:format.HeaderSize], vecPassword)
			if err == nil && len(m) != crypto.KeySize {
				t.Fatalf("opened a master key of %d bytes", len(m))
			}
		}
	})
}

// FuzzFindKey plants the fuzz input as a key object beside the golden
// key: opening with the golden password must still work and yield the
// golden master key, whatever the planted object holds; one that cannot
// be decoded is reported as damaged, never as a wrong password. Keys are
// tried cheapest KDF first, so a planted key with costly (in-range)
// parameters is never derived here; were it, this target would crawl.
func FuzzFindKey(f *testing.F) {
	good := readVector(f, "key-test.bin")
	f.Add(good)
	f.Add(good[:len(good)/2])
	hdr := format.NewHeader(format.TypeKey, 0).Bytes()
	f.Add(append(slices.Clone(hdr), `{"kdf":{"alg":"argon2id","time":10,"memory":1048576,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"data":""}`...))
	f.Add(append(slices.Clone(hdr), `{"kdf":{"alg":"argon2id","time":100,"memory":4194304,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"data":""}`...))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		be := mem.New()
		for name, data := range map[string][]byte{"1good": good, "0planted": b} {
			if err := be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: name}, data, storage.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		master, _, damaged, err := findKey(ctx, be, vecPassword, "")
		if err != nil {
			t.Fatalf("the golden key beside a planted one does not open: %v", err)
		}
		if !bytes.Equal(master, vecMasterKey) {
			t.Fatalf("opened master key %x", master)
		}
		for _, e := range damaged {
			if !errors.Is(e, ErrDamagedKey) || !strings.Contains(e.Error(), "keys/0planted") {
				t.Fatalf("damaged key reported as %v", e)
			}
		}
		// A wrong password tries every key: only when the planted one is
		// cheap to derive.
		if kf, err := parseKeyFile(b); err == nil && (kf.KDF.Time > 2 || kf.KDF.MemoryKiB > 256) {
			return
		}
		_, _, _, err = findKey(ctx, be, "wrong", "")
		if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, format.ErrNewerFormat) {
			t.Fatalf("wrong password: %v", err)
		}
	})
}

// acceptedConfig asserts what a config that decodes promises the rest of
// bunker.
func acceptedConfig(t *testing.T, c *Config) {
	t.Helper()
	p := chunker.Params{Min: c.Chunker.Min, Avg: c.Chunker.Avg, Max: c.Chunker.Max, Seed: [32]byte(c.Chunker.Seed)}
	if err := p.Validate(); err != nil {
		t.Fatalf("config accepted chunker parameters the chunker refuses: %v", err)
	}
	if len(c.IDKey) != 32 || c.Version != format.Version || c.PackSize < 1<<20 || c.PackSize > 512<<20 {
		t.Fatalf("accepted config %+v", c)
	}
	r := &Repository{cfg: c, key: mustKey(t, vecMasterKey)}
	if err := r.setup(); err != nil {
		t.Fatalf("accepted config does not set up: %v", err)
	}
	_ = r.Hash([]byte("x"))
}

func FuzzDecodeConfig(f *testing.F) {
	key := mustKey(f, vecMasterKey)
	f.Add(readVector(f, "config.bin"))
	f.Add(readVector(f, "index.bin"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeConfig(key, b)
		if err == nil {
			acceptedConfig(t, c)
		}
	})
}

// FuzzConfigPlaintext seals the fuzz input as a config, so that the JSON
// decoding and validation behind the AEAD see hostile input.
func FuzzConfigPlaintext(f *testing.F) {
	key := mustKey(f, vecMasterKey)
	js, err := json.Marshal(vecConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add(bytes.Replace(js, []byte(`"required_features":[]`), []byte(`"required_features":["x"]`), 1))
	f.Add(bytes.Replace(js, []byte(`"version":1`), []byte(`"version":2`), 1))
	f.Add([]byte(`{"version":1,"chunker":{"min":64,"avg":128,"max":67108864,"seed":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"id_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","compression":"none","pack_size":1048576}`))
	hdr := format.NewHeader(format.TypeConfig, 0).Bytes()
	f.Fuzz(func(t *testing.T, js []byte) {
		c, err := decodeConfig(key, key.Seal(slices.Clone(hdr), js, hdr))
		if err == nil {
			acceptedConfig(t, c)
		}
	})
}

// FuzzOpenJSON decodes snapshots, sessions and plans. With seal set the
// fuzz input is sealed first, so the JSON decoders see hostile plaintexts.
func FuzzOpenJSON(f *testing.F) {
	key := mustKey(f, vecMasterKey)
	r := &Repository{key: key}
	for _, n := range []string{"snapshot.bin", "session.bin", "plan.bin"} {
		b := readVector(f, n)
		f.Add(b, false, b[5])
		plain, err := key.Open(nil, b[8:], b[:8])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain, true, b[5])
	}
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","tree":"zz","paths":null}`), true, byte(format.TypeSnapshot))
	f.Add([]byte(`{"packs":["00"],"sessions":[1]}`), true, byte(format.TypeMaint))
	f.Fuzz(func(t *testing.T, b []byte, seal bool, which byte) {
		typ := []storage.FileType{storage.SnapshotFile, storage.SessionFile, storage.MaintFile}[int(which)%3]
		if seal {
			hdr := format.NewHeader(objectType(typ), 0).Bytes()
			b = key.Seal(slices.Clone(hdr), b, hdr)
		}
		switch typ {
		case storage.SnapshotFile:
			var sn snapshot.Snapshot
			if err := r.OpenJSON(typ, b, &sn); err == nil {
				// What commands do with a loaded snapshot must not panic.
				sn.ID = ID{1}
				_ = sn.ShortID()
				_ = sn.HasTag("x")
				all := []*snapshot.Snapshot{&sn}
				_ = snapshot.Filter{Hosts: []string{sn.Hostname}, Tags: sn.Tags, Paths: sn.Paths}.Match(&sn)
				_, _ = snapshot.Find(all, "latest", snapshot.Filter{})
				_, _, _ = snapshot.Group(all, "host,paths,tags")
				_ = snapshot.Policy{Last: 1, Hourly: 1, Daily: 1, Weekly: 1, Monthly: 1, Yearly: 1, Within: 1, Tags: []string{"a"}}.Apply(all)
			}
		case storage.SessionFile:
			var s SessionInfo
			_ = r.OpenJSON(typ, b, &s)
		case storage.MaintFile:
			var p Plan
			_ = r.OpenJSON(typ, b, &p)
		}
	})
}

// FuzzPlantedMaintObjects plants arbitrary bytes as a plan, the lease, the
// retention ledger and a session: every reader of maintenance objects must
// skip or name them, never fail or panic (docs/SECURITY.md).
func FuzzPlantedMaintObjects(f *testing.F) {
	for _, n := range []string{"session.bin", "plan.bin"} {
		f.Add(readVector(f, n))
	}
	f.Add([]byte("garbage"))
	f.Add(format.NewHeader(format.TypeMaint, 0).Bytes())
	f.Add(append(format.NewHeader(format.TypeMaint, 0).Bytes(), 0xff, 0xfe))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		store := mem.New()
		r, err := Init(ctx, store, "pw", Options{KDF: crypto.WeakKDF()})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []storage.Handle{
			{Type: storage.MaintFile, Name: "plan-000000000000000000000000"},
			{Type: storage.MaintFile, Name: "lease"},
			{Type: storage.MaintFile, Name: ledgerName},
			{Type: storage.SessionFile, Name: "s-000000000000000000000000"},
		} {
			if err := store.Save(ctx, h, b, storage.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := r.PlansChecked(ctx); err != nil {
			t.Fatalf("PlansChecked: %v", err)
		}
		if _, err := UnreadableObjects(ctx, r); err != nil {
			t.Fatalf("UnreadableObjects: %v", err)
		}
		if _, err := r.FirstSeen(ctx, "s-000000000000000000000000"); err != nil {
			t.Fatalf("FirstSeen: %v", err)
		}
		if err := r.LoadIndex(ctx, false); err != nil {
			t.Fatalf("LoadIndex: %v", err)
		}
	})
}
