package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

func TestPostgresBackupValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    app.PostgresBackup
		want string
	}{
		{"logical", app.PostgresBackup{Logical: postgres.LogicalOptions{Databases: []string{"app"}}}, ""},
		{"physical", app.PostgresBackup{Physical: true, Differential: true}, ""},
		{"full without physical", app.PostgresBackup{Full: true}, "go with physical"},
		{"max rate without physical", app.PostgresBackup{PhysicalOptions: postgres.PhysicalOptions{MaxRate: "10M"}}, "go with physical"},
		{"full and differential", app.PostgresBackup{Physical: true, Full: true, Differential: true}, "exclude each other"},
		{"negative archive timeout", app.PostgresBackup{Physical: true, PhysicalOptions: postgres.PhysicalOptions{ArchiveTimeout: -time.Second}}, "must be positive"},
		{"databases of a base backup", app.PostgresBackup{Physical: true, Logical: postgres.LogicalOptions{Databases: []string{"app"}}}, "whole cluster"},
		{"no globals of a base backup", app.PostgresBackup{Physical: true, Logical: postgres.LogicalOptions{NoGlobals: true}}, "whole cluster"},
	} {
		err := tc.b.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
