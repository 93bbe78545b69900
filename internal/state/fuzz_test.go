package state

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to every decoder of stored values and
// keys: they must return a value or an error naming the key, never
// panic, and a decoded run must survive a store round trip unchanged.
func FuzzDecode(f *testing.F) {
	rec := runRecord{ID: "r1", Job: "pg", Kind: KindBackup, Result: ResultSuccess,
		Started: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC), Error: "boom", BytesRead: 7, RestoreSeconds: 1.5}
	good, _ := json.Marshal(rec)
	for _, seed := range []string{
		string(good),
		`{"id":"r1","job":"pg","result":"running","started":"2026-03-14T12:00:00.123456789+01:00","scheduled":"0001-01-01T00:00:00Z"}`,
		`{"id":"r1","job":"pg","result":"x","attempt":1e99}`,
		`{"id":"r1","job":"pg","result":"x","started":"9999-12-31T23:59:59Z","unknown":[1,2,{}]}`,
		`{"id":"r2"}`, `{"since":"2026-03-14T12:00:00Z"}`, `"2026-03-14T12:00:00Z"`,
		`1`, `-1`, `null`, `[]`, ``, "\x00\xff", `{"id":"r1","job":"pg","result":"x","log":"ignored"}`,
		string(timeKey(rec.Started)) + "id", string(timeKey(time.Unix(-1e12, 999999999))),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := decodeRun("r1", data); err != nil {
			mustName(t, err, "runs/r1")
		} else {
			again, err := json.Marshal(r)
			if err != nil {
				// Times outside years 0–9999 decode but do not encode;
				// putRun reports that as an error.
				return
			}
			r2, err := decodeRun("r1", again)
			if err != nil {
				t.Fatalf("re-encoded run does not decode: %v\n%s", err, again)
			}
			if a, b := mustJSON(t, r), mustJSON(t, r2); a != b {
				t.Fatalf("round trip changed the run:\n%s\n%s", a, b)
			}
		}
		if _, err := decodeSlot("job", data); err != nil {
			mustName(t, err, "slots/job")
		}
		if _, err := decodeAlert("key", data); err != nil {
			mustName(t, err, "alerts/key")
		}
		if _, err := decodeVersion(data); err != nil && !strings.Contains(err.Error(), "meta/version") && !strings.Contains(err.Error(), "newer") {
			t.Fatalf("version error %q names no key", err)
		}
		if p, err := decodeSize("repo", data, data); err != nil {
			mustName(t, err, "sizes/repo")
		} else if p.Bytes < 0 {
			t.Fatalf("negative size %d", p.Bytes)
		}
		if tm, id, err := splitOrderKey(data); err != nil {
			mustName(t, err, "index key")
		} else if string(orderKey(tm, id)) != string(data) {
			t.Fatalf("order key %x decodes to %v %q which encodes differently", data, tm, id)
		}
	})
}

func mustName(t *testing.T, err error, key string) {
	t.Helper()
	if !strings.Contains(err.Error(), key) {
		t.Fatalf("error %q does not name %s", err, key)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
