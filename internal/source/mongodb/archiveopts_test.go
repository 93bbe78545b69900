package mongodb

import (
	"slices"
	"testing"
)

// TestArchiveOptions: mongorestore gets the namespace patterns and
// renamings as the user gave them, escapes included.
func TestArchiveOptions(t *testing.T) {
	inc, _ := ParsePattern(`shop\*.a*`)
	exc, _ := ParsePattern("crm")
	rn, err := ParseRename("shop.*", `copy\.x.*`)
	if err != nil {
		t.Fatal(err)
	}
	ts := Timestamp{T: 5}
	o := RestoreOptions{Select: Selector{Include: []*Pattern{inc}, Exclude: []*Pattern{exc}}, Renames: []*Rename{rn},
		Drop: true, Jobs: 3, OplogReplay: true, OplogLimit: &ts}
	ao := o.ArchiveOptions()
	if !slices.Equal(ao.Include, []string{`shop\*.a*`}) || !slices.Equal(ao.Exclude, []string{"crm"}) ||
		!slices.Equal(ao.From, []string{"shop.*"}) || !slices.Equal(ao.To, []string{`copy\.x.*`}) ||
		!ao.Drop || ao.Jobs != 3 || !ao.OplogReplay || ao.OplogLimit != &ts {
		t.Errorf("ArchiveOptions() = %+v", ao)
	}
}
