package format

import (
	"errors"
	"os"
	"testing"
)

// Every sealed vector of testdata/vectors starts with the header of its
// object type, and is refused as any other type.
func TestVectorHeaders(t *testing.T) {
	want := map[string]Header{
		"config.bin":    {1, TypeConfig, 0},
		"key-test.bin":  {1, TypeKey, 0},
		"pack-data.bin": {1, TypePack, 1},
		"pack-tree.bin": {1, TypePack, 2},
		"index.bin":     {1, TypeIndex, 0},
		"snapshot.bin":  {1, TypeSnapshot, 0},
		"session.bin":   {1, TypeSession, 0},
		"plan.bin":      {1, TypeMaint, 0},
		"lease.bin":     {1, TypeMaint, 0},
	}
	for name, h := range want {
		b, err := os.ReadFile("../../../testdata/vectors/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseHeader(b, h.Type)
		if err != nil || got != h {
			t.Errorf("%s: header %+v, %v; want %+v", name, got, err, h)
		}
		for ty := TypeConfig; ty <= TypeMaint; ty++ {
			if ty != h.Type {
				if _, err := ParseHeader(b, ty); !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s accepted as %s", name, ty)
				}
			}
		}
	}
}
