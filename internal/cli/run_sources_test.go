package cli_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// TestRunMongoJob: a plan's mongodb job backs up the databases it names
// in-process, with the URI from the job's secret, and its run reports
// the snapshot; the URI's password reaches neither the output nor the
// snapshot.
func TestRunMongoJob(t *testing.T) {
	src := testsrv.FerretDB(t, testsrv.FerretDBOptions{User: "root", Password: "job-s3cret-pw"})
	sc := mongoClient(t, src.URI)
	ctx := context.Background()
	for _, db := range []string{"shop", "crm"} {
		if _, err := sc.Database(db).Collection("items").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "db", Value: db}}); err != nil {
			t.Fatal(err)
		}
	}
	pe := newPlanEnv(t, `  - name: docs
    source: {type: mongodb, dsn: env:MONGO_URI, databases: [shop]}
    schedule: every 24h
    repository: main
`)
	pe.env["MONGO_URI"] = src.URI
	res := testutil.Expect(t, pe.run("--json", "run", "--plan", pe.plan, "docs"), 0)
	sum := res.Message(t, "summary")
	id, _ := sum["snapshot_id"].(string)
	if id == "" {
		t.Fatalf("run: %v", sum)
	}
	if n := pe.snapshotsTagged(pe.main, "job=docs"); n != 1 {
		t.Fatalf("main holds %d snapshots of docs, want 1", n)
	}
	if strings.Contains(res.Stdout+res.Stderr, src.Password) {
		t.Errorf("the run printed the database password:\n%s", res)
	}
	info := pe.main.mongoBackupInfo(id)
	if got := namespaces(info); len(got) != 1 || got[0] != "shop.items" {
		t.Errorf("backed up %q, want only shop.items", got)
	}
}
