package maintenance

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/restserver"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// The attacker simulation against real stores: the attacker's credential
// is enforced by the store, not by a wrapper of ours (bunker serve
// --append-only), or by Object Lock on a real object store (SeaweedFS).
// Store times are real here, so sessions the attacker plants hold sweeps
// back for their whole TTL: these runs prove that nothing is lost, the
// in-memory one also that prune still reclaims space.

var attackServerSeeds = 4

// realWorld sets up the pool and a repository opener on real stores; the
// simulation's clock starts now and only drives writers' lapse checks and
// snapshot times.
func realWorld(ctx context.Context, seed uint64, honest storage.Backend, lock *repository.LockConfig) (*attackWorld, error) {
	clock := &simClock{}
	clock.ns.Store(time.Now().UnixNano())
	pool, open, err := initSimRepo(ctx, seed, 11, clock, honest, lock)
	if err != nil {
		return nil, err
	}
	return &attackWorld{clock: clock, store: honest, pool: pool, open: open}, nil
}

// TestAttackerSimulationServe: the attacker talks to bunker serve
// --append-only; the administrator works on the served directory.
func TestAttackerSimulationServe(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers")
	}
	runAttackSeeds(t, 1, attackServerSeeds, false, func(ctx context.Context, t *testing.T, seed uint64) (*attackWorld, error) {
		dir := t.TempDir()
		srv, err := restserver.New(restserver.Options{Dir: dir, NoAuth: true, NoTLS: true, AppendOnly: true})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx, ln) }()
		t.Cleanup(func() { cancel(); <-done })
		honest, err := local.Create(filepath.Join(dir, "repo"))
		if err != nil {
			return nil, err
		}
		w, err := realWorld(ctx, seed, honest, nil)
		if err != nil {
			return nil, err
		}
		cfg, err := rest.ParseConfig("http://"+ln.Addr().String()+"/repo", nil)
		if err != nil {
			return nil, err
		}
		if w.attackerBE, err = rest.Open(ctx, cfg); err != nil {
			return nil, err
		}
		return w, nil
	})
}

// TestAttackerSimulationObjectLockedS3: a repository in an object-locked
// SeaweedFS bucket; the attacker's credential may create objects but not
// delete or overwrite them (the policy of docs/STORAGE.md).
func TestAttackerSimulationObjectLockedS3(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers")
	}
	s := testsrv.SeaweedFS(t)
	env := map[string]string{"AWS_ACCESS_KEY_ID": s.AccessKey, "AWS_SECRET_ACCESS_KEY": s.SecretKey, "AWS_REGION": s.Region}
	getenv := func(k string) string { return env[k] }
	runAttackSeeds(t, 1, attackServerSeeds, false, func(ctx context.Context, t *testing.T, seed uint64) (*attackWorld, error) {
		loc := fmt.Sprintf("s3:%s/attack-%d/repo", s.URL, seed)
		honest, err := location.Open(ctx, loc, location.Options{Getenv: getenv, Create: true, ObjectLock: true})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = honest.Close() })
		w, err := realWorld(ctx, seed, honest, &repository.LockConfig{Mode: storage.LockCompliance, Retention: 24 * time.Hour})
		if err != nil {
			return nil, err
		}
		att, err := location.Open(ctx, loc, location.Options{Getenv: getenv})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = att.Close() })
		w.attackerBE = appendOnly{att}
		return w, nil
	})
}
