package mongodb

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustMarshal(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMetadataRoundTrip(t *testing.T) {
	m := &Metadata{
		Options: mustMarshal(t, bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(1 << 20)},
			{Key: "validator", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$type", Value: "string"}}}}}}),
		Indexes: []bson.Raw{
			mustMarshal(t, bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}}),
			mustMarshal(t, bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: -1}}},
				{Key: "name", Value: "a_1_b_-1"}, {Key: "unique", Value: true}}),
		},
		UUID:           "0123456789abcdef0123456789abcdef",
		CollectionName: "orders",
		Type:           TypeCollection,
	}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// mongodump's layout: canonical extended JSON, fields in its order.
	for _, want := range []string{`{"options":{"capped":true,"size":{"$numberLong":"1048576"}`, `"indexes":[{"v":{"$numberInt":"2"}`,
		`"uuid":"0123456789abcdef0123456789abcdef","collectionName":"orders","type":"collection"}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("metadata %s lacks %s", data, want)
		}
	}
	got, err := DecodeMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Options, m.Options) || len(got.Indexes) != 2 || !bytes.Equal(got.Indexes[1], m.Indexes[1]) ||
		got.UUID != m.UUID || got.CollectionName != m.CollectionName || got.Type != m.Type {
		t.Fatalf("round trip: got %+v", got)
	}
}

func TestDecodeMongodumpMetadata(t *testing.T) {
	// As mongodump 100.x writes a time-series collection.
	in := `{"options":{"timeseries":{"timeField":"ts","metaField":"meta","granularity":"seconds","bucketMaxSpanSeconds":{"$numberInt":"3600"}}},` +
		`"indexes":[{"v":{"$numberInt":"2"},"key":{"meta.device":{"$numberInt":"1"}},"name":"meta.device_1"}],"collectionName":"timeseriesColl","type":"timeseries"}`
	m, err := DecodeMetadata([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeTimeseries || m.CollectionName != "timeseriesColl" || len(m.Indexes) != 1 || indexName(m.Indexes[0]) != "meta.device_1" {
		t.Fatalf("decoded %+v", m)
	}
	// Older mongodump: no type, no uuid, relaxed numbers.
	m, err = DecodeMetadata([]byte(`{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_","ns":"a.b"}]}`))
	if err != nil || len(m.Indexes) != 1 {
		t.Fatalf("old metadata: %v %+v", err, m)
	}
	for _, bad := range []string{``, `[]`, `{"options":5}`, `{"indexes":[{"name":"x"}]}`, `{"indexes":[{"key":{},"name":3}]}`,
		`{"indexes":[5]}`, `{"uuid":"xyz"}`, `{"collectionName":1}`} {
		if _, err := DecodeMetadata([]byte(bad)); err == nil {
			t.Errorf("DecodeMetadata(%s) accepted", bad)
		}
	}
}

func TestBackupInfo(t *testing.T) {
	b := &BackupInfo{Format: Format, Version: FormatVersion, ServerVersion: "7.0.1", Topology: ReplicaSet, Hosts: []string{"a:1", "b:2"},
		Start: time.Unix(100, 0).UTC(), End: time.Unix(200, 0).UTC(), OplogStart: "5:1", OplogEnd: "9:3", OplogEntries: 4,
		Collections: []CollectionInfo{
			{DB: "a", Name: "x", Type: TypeCollection, Data: "a/x.bson", Metadata: "a/x.metadata.json"},
			{DB: "a", Name: "v", Type: TypeView, Metadata: "a/v.metadata.json"},
			{DB: "b", Name: "y", Type: TypeCollection, Data: "b/y.bson", Metadata: "b/y.metadata.json"},
			{DB: "admin", Name: "system.users", Type: TypeCollection, Data: "admin/system.users.bson"},
		}, Users: true}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBackupInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Collections) != 4 || got.OplogEnd != "9:3" {
		t.Fatalf("decoded %+v", got)
	}
	m := got.Meta().Map()
	if m["databases"] != "a,b" || m["collections"] != "3" || m["oplog_end"] != "9:3" || m["hosts"] != "a:1,b:2" || m["topology"] != "replset" {
		t.Fatalf("snapshot metadata %v", m)
	}
	for _, mut := range []func(*BackupInfo){
		func(b *BackupInfo) { b.Format = "x" },
		func(b *BackupInfo) { b.Version = FormatVersion + 1 },
		func(b *BackupInfo) { b.OplogEnd = "x" },
		func(b *BackupInfo) { b.Collections[0].Data = "../x.bson" },
		func(b *BackupInfo) { b.Collections[0].Data = "/etc/passwd" },
		func(b *BackupInfo) { b.Collections[0].Data = "" },
		func(b *BackupInfo) { b.Collections[0].Type = "thing" },
		func(b *BackupInfo) { b.Collections[0].Name = "" },
	} {
		c := *b
		c.Collections = append([]CollectionInfo(nil), b.Collections...)
		mut(&c)
		data, _ := c.Encode()
		if _, err := DecodeBackupInfo(data); err == nil {
			t.Errorf("accepted %s", data)
		}
	}
}

func TestTimestamps(t *testing.T) {
	ts, err := ParseTimestamp("1700000000:7")
	if err != nil || ts != (Timestamp{T: 1700000000, I: 7}) || FormatTimestamp(ts) != "1700000000:7" {
		t.Fatalf("ParseTimestamp: %v %v", ts, err)
	}
	if ts, err := ParseTimestamp("12"); err != nil || ts != (Timestamp{T: 12}) {
		t.Fatalf("seconds only: %v %v", ts, err)
	}
	for _, bad := range []string{"", "x", "1:", ":1", "1:2:3", "-1", "4294967296", "1:4294967296"} {
		if _, err := ParseTimestamp(bad); err == nil {
			t.Errorf("ParseTimestamp(%q) accepted", bad)
		}
	}
	lim, err := ParseLimit("2026-01-02T03:04:05.9Z")
	if err != nil || lim != (Timestamp{T: uint32(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix())}) {
		t.Fatalf("ParseLimit(time) = %v, %v", lim, err)
	}
	// The timespec grammar: PostgreSQL-style offsets and a space work too.
	if l2, err := ParseLimit("2026-01-02 05:04:05.9+02"); err != nil || l2 != lim {
		t.Fatalf("ParseLimit(+02) = %v, %v; want %v", l2, err, lim)
	}
	if lim, err := ParseLimit("5:6"); err != nil || lim != (Timestamp{T: 5, I: 6}) {
		t.Fatalf("ParseLimit(ts) = %v, %v", lim, err)
	}
	if _, err := ParseLimit("yesterday"); err == nil {
		t.Error("ParseLimit accepted yesterday")
	}
}

// FuzzDecodeMetadata: decoding never panics, and what decodes encodes and
// decodes again to the same.
func FuzzDecodeMetadata(f *testing.F) {
	f.Add([]byte(`{"options":{"capped":true,"size":{"$numberLong":"4096"}},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"uuid":"00ff","collectionName":"c","type":"collection"}`))
	f.Add([]byte(`{"options":{"viewOn":"c","pipeline":[{"$match":{"a":1}}]},"indexes":[],"collectionName":"v","type":"view"}`))
	f.Add([]byte(`{"indexes":[{"key":{"a":"text"},"name":"t","weights":{"a":{"$numberDouble":"1.5"}}}]}`))
	f.Add([]byte(`{"options":{"x":{"$date":{"$numberLong":"1"}},"y":{"$binary":{"base64":"AA==","subType":"04"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMetadata(data)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded metadata does not encode: %v", err)
		}
		m2, err := DecodeMetadata(enc)
		if err != nil {
			t.Fatalf("re-encoded metadata does not decode: %v\n%s", err, enc)
		}
		if !bytes.Equal(m.Options, m2.Options) || len(m.Indexes) != len(m2.Indexes) || m.CollectionName != m2.CollectionName ||
			m.UUID != m2.UUID || m.Type != m2.Type {
			t.Fatalf("round trip changed the metadata:\n%s", enc)
		}
	})
}

// FuzzDecodeBackupInfo: decoding never panics, and accepted file names
// stay inside the backup.
func FuzzDecodeBackupInfo(f *testing.F) {
	b := &BackupInfo{Format: Format, Version: 1, Collections: []CollectionInfo{{DB: "a", Name: "b", Type: TypeCollection, Data: "a/b.bson"}}}
	data, _ := b.Encode()
	f.Add(data)
	f.Add([]byte(`{"format":"bunker-mongodb","version":1,"oplog_start":"1:2","oplog_end":"3:4","collections":[{"db":"a","name":"v","type":"view"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBackupInfo(data)
		if err != nil {
			return
		}
		for _, c := range b.Collections {
			for _, p := range []string{c.Data, c.Metadata} {
				if strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") {
					t.Fatalf("accepted file name %q", p)
				}
			}
		}
	})
}

// FuzzParseLimit: parsing never panics; a timestamp prints back to what
// parses to itself.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"1:2", "17", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123+02:00", "1969-12-31T23:59:59Z", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseLimit(s)
		if err != nil {
			return
		}
		back, err := ParseTimestamp(FormatTimestamp(ts))
		if err != nil || back != ts {
			t.Fatalf("%q → %v → %q → %v (%v)", s, ts, FormatTimestamp(ts), back, err)
		}
	})
}
