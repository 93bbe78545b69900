package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

const (
	kindBackup  = "backup"
	kindRestore = "restore"
	// waitRetry is how soon an object waiting for a Secret looks again
	// (Secrets are not watched: the operator keeps no copy of them).
	waitRetry = 30 * time.Second
	// findRetry is how soon a snapshot look-up that failed is tried again.
	findRetry = time.Minute
	// writeTimeout bounds the write of an outcome, which is attempted
	// even while the operator stops.
	writeTimeout = 30 * time.Second
)

// Field indexes.
const (
	indexRepository = "spec.repository"
	indexBackupName = "spec.backupName"
)

func (o *Operator) setupIndexes() error {
	idx := o.mgr.GetFieldIndexer()
	ctx := context.Background()
	if err := idx.IndexField(ctx, &v1alpha1.Backup{}, indexRepository, func(obj client.Object) []string {
		return []string{obj.(*v1alpha1.Backup).Spec.Repository}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.Restore{}, indexRepository, func(obj client.Object) []string {
		return []string{obj.(*v1alpha1.Restore).Spec.Repository}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &v1alpha1.Restore{}, indexBackupName, func(obj client.Object) []string {
		if n := obj.(*v1alpha1.Restore).Spec.BackupName; n != "" {
			return []string{n}
		}
		return nil
	})
}

// backupTag is the snapshot tag that identifies b's snapshot.
func backupTag(b *v1alpha1.Backup) string {
	return fmt.Sprintf("%s=%s/%s/%s", v1alpha1.TagBackup, b.Namespace, b.Name, b.UID)
}

type backupController struct {
	*Operator
	wake waker
}

func (o *Operator) setupBackups() error {
	r := &backupController{Operator: o}
	b := builder.ControllerManagedBy(o.mgr).Named("backup").
		For(&v1alpha1.Backup{}).
		// A BackupRepository that appears starts the Backups waiting for it.
		Watches(&v1alpha1.BackupRepository{}, handler.EnqueueRequestsFromMapFunc(r.waitingFor)).
		WatchesRawSource(r.wake.source())
	if o.opts.Mode == ModeJob {
		b = b.Owns(&batchv1.Job{})
	}
	return b.Complete(r)
}

func (r *backupController) waitingFor(ctx context.Context, repo client.Object) []reconcile.Request {
	var list v1alpha1.BackupList
	if err := r.client.List(ctx, &list, client.InNamespace(repo.GetNamespace()), client.MatchingFields{indexRepository: repo.GetName()}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, b := range list.Items {
		if b.Status.Phase == "" || b.Status.Phase == v1alpha1.BackupPending {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Name}})
		}
	}
	return reqs
}

// Reconcile moves a Backup along Pending → Running → Completed/Failed.
func (r *backupController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := kindBackup + "/" + req.String()
	var b v1alpha1.Backup
	if err := r.client.Get(ctx, req.NamespacedName, &b); err != nil {
		if apierrors.IsNotFound(err) {
			r.work.cancel(key)
			r.light.cancel(key)
			r.running.set(kindBackup, req.NamespacedName, false)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	// The cache may lag behind: work this process runs counts too.
	r.running.set(kindBackup, req.NamespacedName, b.Status.Phase == v1alpha1.BackupRunning || r.work.busy(key) || r.light.busy(key))
	switch b.Status.Phase {
	case v1alpha1.BackupCompleted:
		if b.Status.CompletionTime != nil {
			r.metrics.success(b.Namespace, b.Labels[v1alpha1.LabelSchedule], float64(b.Status.CompletionTime.Unix()))
		}
		return reconcile.Result{}, nil
	case v1alpha1.BackupFailed:
		return reconcile.Result{}, nil
	case v1alpha1.BackupRunning:
		if r.opts.Mode == ModeJob {
			return r.trackJob(ctx, key, &b)
		}
		return r.resume(ctx, key, &b)
	default:
		return r.begin(ctx, key, &b)
	}
}

// pending records why b cannot start yet. Errors other than a missing
// object are returned (the controller retries with backoff).
func (r *backupController) pending(ctx context.Context, b *v1alpha1.Backup, why error) (reconcile.Result, error) {
	var res reconcile.Result
	switch {
	case isMissing(why):
		res.RequeueAfter = waitRetry
	case isRefused(why):
		return reconcile.Result{}, r.failNow(ctx, b, why.Error())
	case why != nil:
		return reconcile.Result{}, why
	}
	msg := "waiting for a free worker"
	if why != nil {
		msg = "waiting: " + why.Error()
	}
	if b.Status.Phase == v1alpha1.BackupPending && b.Status.Message == msg {
		return res, nil
	}
	b.Status.Phase = v1alpha1.BackupPending
	b.Status.Message = msg
	setCondition(&b.Status.Conditions, r.now().Time, b.Generation, v1alpha1.ConditionCompleted, metav1.ConditionUnknown, "Pending", msg)
	return res, r.client.Status().Update(ctx, b)
}

func (r *backupController) begin(ctx context.Context, key string, b *v1alpha1.Backup) (reconcile.Result, error) {
	if r.work.busy(key) {
		return reconcile.Result{}, nil // started; the cache has not seen it yet
	}
	if err := r.opts.checkBackup(b); err != nil {
		return reconcile.Result{}, r.failNow(ctx, b, err.Error())
	}
	repoObj, err := r.repository(ctx, b.Namespace, b.Spec.Repository)
	if err == nil {
		err = checkRepository(repoObj)
	}
	if err != nil {
		return r.pending(ctx, b, err)
	}
	if r.opts.Mode == ModeJob {
		// The Job reads the Secrets itself; they are checked here so
		// that a refused one fails the Backup before any Job runs.
		if _, err := r.resolve(ctx, repoObj); err != nil {
			return r.pending(ctx, b, err)
		}
		return reconcile.Result{}, r.startJob(ctx, b, repoObj, "")
	}
	repo, err := r.resolve(ctx, repoObj)
	if err != nil {
		return r.pending(ctx, b, err)
	}
	nn := client.ObjectKeyFromObject(b)
	s := r.work.reserve(key, r.wake.fn(nn))
	if s == nil {
		return r.pending(ctx, b, nil)
	}
	attempt := b.Status.Attempts + 1
	r.markRunning(b, attempt, "backing up into "+repoObj.Name)
	if err := r.client.Status().Update(ctx, b); err != nil {
		s.release()
		return reconcile.Result{}, err
	}
	r.running.set(kindBackup, nn, true)
	r.event(b, false, "Started", "Backup", fmt.Sprintf("backing up into BackupRepository %s (attempt %d)", repoObj.Name, attempt))
	b = b.DeepCopy()
	s.run(func(ctx context.Context) { r.run(ctx, b, repo, attempt) })
	return reconcile.Result{}, nil
}

func (r *backupController) markRunning(b *v1alpha1.Backup, attempt int32, msg string) {
	now := r.now()
	b.Status.Phase = v1alpha1.BackupRunning
	b.Status.Attempts = attempt
	if b.Status.StartTime == nil {
		b.Status.StartTime = &now
	}
	b.Status.Message = msg
	setCondition(&b.Status.Conditions, now.Time, b.Generation, v1alpha1.ConditionCompleted, metav1.ConditionUnknown, "Running", msg)
}

// run runs attempt of b and records the outcome, unless the operator is
// stopping: then b stays Running for the next start to resume.
func (r *backupController) run(ctx context.Context, b *v1alpha1.Backup, repo Repo, attempt int32) {
	tags := append(slices.Clone(b.Spec.Tags), backupTag(b))
	spec, err := r.opts.backupSpec(b)
	var res BackupResult
	if err == nil {
		res, err = r.opts.Runner.Backup(ctx, BackupRequest{Repo: repo, Spec: spec, Tags: tags})
	}
	if ctx.Err() != nil {
		r.log.Info("backup interrupted; the next operator start resumes it", "backup", b.Namespace+"/"+b.Name)
		return
	}
	r.finish(b, attempt, repo, res, err, "")
}

// finish records the outcome of attempt of b. note, when set, replaces
// the success message.
func (r *backupController) finish(b *v1alpha1.Backup, attempt int32, repo Repo, res BackupResult, runErr error, note string) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	nn := client.ObjectKeyFromObject(b)
	msg := note
	if runErr != nil {
		msg = truncate(repo.redact(runErr.Error()), maxMessage)
	} else if msg == "" {
		msg = fmt.Sprintf("snapshot %s: %d objects, %d bytes added", shortID(res.SnapshotID), res.Objects, res.BytesAdded)
	}
	var final v1alpha1.Backup
	final.UID = b.UID
	err := updateStatus(ctx, r.Operator, nn, &final, func(f *v1alpha1.Backup) error {
		if f.Status.Phase != v1alpha1.BackupRunning || f.Status.Attempts != attempt {
			return errGone
		}
		now := r.now()
		f.Status.CompletionTime = &now
		f.Status.Message = msg
		if runErr != nil {
			f.Status.Phase = v1alpha1.BackupFailed
			setCondition(&f.Status.Conditions, now.Time, f.Generation, v1alpha1.ConditionCompleted, metav1.ConditionFalse, "Failed", msg)
			setCondition(&f.Status.Conditions, now.Time, f.Generation, v1alpha1.ConditionFailed, metav1.ConditionTrue, "BackupFailed", msg)
			return nil
		}
		f.Status.Phase = v1alpha1.BackupCompleted
		f.Status.SnapshotID = res.SnapshotID
		f.Status.Objects = res.Objects
		f.Status.BytesAdded = res.BytesAdded
		setCondition(&f.Status.Conditions, now.Time, f.Generation, v1alpha1.ConditionCompleted, metav1.ConditionTrue, "Succeeded", msg)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errGone) {
			// Left Running: a later look finds the snapshot by its tag.
			r.log.Error("cannot record the outcome of a backup", "backup", nn.String(), "error", repo.redact(err.Error()))
			r.wake.wake(nn, waitRetry)
		}
		return
	}
	if runErr != nil {
		r.metrics.backups.WithLabelValues(final.Namespace, resultFailed).Inc()
		r.event(&final, true, "Failed", "Backup", msg)
		r.log.Warn("backup failed", "backup", nn.String(), "error", msg)
		return
	}
	r.metrics.backups.WithLabelValues(final.Namespace, resultCompleted).Inc()
	if final.Status.StartTime != nil && final.Status.CompletionTime != nil {
		r.metrics.duration.Observe(final.Status.CompletionTime.Sub(final.Status.StartTime.Time).Seconds())
		r.metrics.success(final.Namespace, final.Labels[v1alpha1.LabelSchedule], float64(final.Status.CompletionTime.Unix()))
	}
	r.event(&final, false, "Completed", "Backup", msg)
	r.log.Info("backup completed", "backup", nn.String(), "snapshot", res.SnapshotID)
}

// failNow fails b before it started (a spec the API server could not
// refuse).
func (r *backupController) failNow(ctx context.Context, b *v1alpha1.Backup, msg string) error {
	now := r.now()
	b.Status.Phase = v1alpha1.BackupFailed
	b.Status.Message = msg
	b.Status.CompletionTime = &now
	setCondition(&b.Status.Conditions, now.Time, b.Generation, v1alpha1.ConditionCompleted, metav1.ConditionFalse, "Failed", msg)
	setCondition(&b.Status.Conditions, now.Time, b.Generation, v1alpha1.ConditionFailed, metav1.ConditionTrue, "InvalidSpec", msg)
	if err := r.client.Status().Update(ctx, b); err != nil {
		return err
	}
	r.metrics.backups.WithLabelValues(b.Namespace, resultFailed).Inc()
	r.event(b, true, "Failed", "Backup", msg)
	return nil
}

// resume handles a Backup found Running that no goroutine of this process
// runs: the operator stopped during it. If its snapshot exists it is
// complete; otherwise it runs again.
func (r *backupController) resume(ctx context.Context, key string, b *v1alpha1.Backup) (reconcile.Result, error) {
	if r.work.busy(key) {
		return reconcile.Result{}, nil
	}
	// The cache may not have our own latest write yet: act on the API
	// server's view.
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if b.Status.Phase != v1alpha1.BackupRunning {
		return reconcile.Result{}, nil
	}
	repoObj, err := r.repository(ctx, b.Namespace, b.Spec.Repository)
	if err == nil {
		var repo Repo
		if repo, err = r.resolve(ctx, repoObj); err == nil {
			nn := client.ObjectKeyFromObject(b)
			s := r.work.reserve(key, r.wake.fn(nn))
			if s == nil {
				return reconcile.Result{}, nil
			}
			b = b.DeepCopy()
			s.run(func(ctx context.Context) { r.recover(ctx, b, repo) })
			return reconcile.Result{}, nil
		}
	}
	if isMissing(err) {
		r.log.Warn("cannot resume backup", "backup", b.Namespace+"/"+b.Name, "error", err.Error())
		return reconcile.Result{RequeueAfter: waitRetry}, nil
	}
	return reconcile.Result{}, err
}

// recover looks for the snapshot of b's interrupted attempt and either
// records it or runs b again.
func (r *backupController) recover(ctx context.Context, b *v1alpha1.Backup, repo Repo) {
	res, found, err := r.opts.Runner.FindBackup(ctx, repo, backupTag(b))
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.lookupFailed(b, repo, err)
		return
	}
	if found {
		r.finish(b, b.Status.Attempts, repo, res, nil,
			fmt.Sprintf("snapshot %s (saved before the operator restarted)", shortID(res.SnapshotID)))
		return
	}
	attempt := b.Status.Attempts + 1
	if err := r.rerun(ctx, b, attempt, ""); err != nil {
		return
	}
	r.run(ctx, b, repo, attempt)
}

// rerun records that b runs again as attempt, in job (when not "").
func (r *backupController) rerun(ctx context.Context, b *v1alpha1.Backup, attempt int32, job string) error {
	prev := b.Status.Attempts
	msg := "running again after an operator restart"
	var fresh v1alpha1.Backup
	fresh.UID = b.UID
	err := updateStatus(ctx, r.Operator, client.ObjectKeyFromObject(b), &fresh, func(f *v1alpha1.Backup) error {
		if f.Status.Phase != v1alpha1.BackupRunning || f.Status.Attempts != prev {
			return errGone
		}
		r.markRunning(f, attempt, msg)
		if job != "" {
			f.Status.Job = job
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errGone) && ctx.Err() == nil {
			r.wake.wake(client.ObjectKeyFromObject(b), waitRetry)
		}
		return err
	}
	r.event(&fresh, false, "Resumed", "Backup", fmt.Sprintf("%s (attempt %d)", msg, attempt))
	return nil
}

// lookupFailed notes that FindBackup failed and tries again later.
func (r *backupController) lookupFailed(b *v1alpha1.Backup, repo Repo, err error) {
	msg := truncate("cannot look for the snapshot: "+repo.redact(err.Error())+" (retrying)", maxMessage)
	r.log.Warn("snapshot look-up failed", "backup", b.Namespace+"/"+b.Name, "error", msg)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	var fresh v1alpha1.Backup
	fresh.UID = b.UID
	_ = updateStatus(ctx, r.Operator, client.ObjectKeyFromObject(b), &fresh, func(f *v1alpha1.Backup) error {
		if f.Status.Phase != v1alpha1.BackupRunning || f.Status.Message == msg {
			return errGone
		}
		f.Status.Message = msg
		return nil
	})
	r.wake.wake(client.ObjectKeyFromObject(b), findRetry)
}

// startJob writes b Running and creates the Job of its next attempt.
func (r *backupController) startJob(ctx context.Context, b *v1alpha1.Backup, repoObj *v1alpha1.BackupRepository, msg string) error {
	attempt := b.Status.Attempts + 1
	name := jobName(kindBackup, b.Name, attempt)
	spec, err := r.opts.backupSpec(b)
	if err != nil {
		return err
	}
	job, err := r.newJob(b, name, v1alpha1.LabelBackup, repoObj, BackupArgs(spec, append(slices.Clone(b.Spec.Tags), backupTag(b))), false)
	if err != nil {
		return err
	}
	if msg == "" {
		msg = "running in Job " + name
	}
	r.markRunning(b, attempt, msg)
	b.Status.Job = name
	if err := r.client.Status().Update(ctx, b); err != nil {
		return err
	}
	r.running.set(kindBackup, client.ObjectKeyFromObject(b), true)
	if err := r.client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	r.event(b, false, "Started", "Backup", fmt.Sprintf("backing up into BackupRepository %s in Job %s (attempt %d)", repoObj.Name, name, attempt))
	return nil
}

// trackJob follows the Job of a Running Backup (job mode).
func (r *backupController) trackJob(ctx context.Context, key string, b *v1alpha1.Backup) (reconcile.Result, error) {
	if r.light.busy(key) {
		return reconcile.Result{}, nil
	}
	job, err := r.job(ctx, b.Namespace, b.Status.Job, b.UID)
	if err != nil {
		return reconcile.Result{}, err
	}
	if job != nil {
		done, ok, _, msg := jobOutcome(job)
		switch {
		case !done && job.DeletionTimestamp != nil:
			job = nil // being deleted: its pod is killed
		case !done:
			return reconcile.Result{}, nil
		case !ok:
			r.finish(b, b.Status.Attempts, Repo{}, BackupResult{}, fmt.Errorf("job %s failed: %s", job.Name, msg), "")
			return reconcile.Result{}, nil
		}
	}
	// The Job succeeded (its snapshot carries the tag), or it is gone (the
	// operator stopped before creating it, or someone deleted it): look
	// for the snapshot, and run a new Job if there is none. First make
	// sure the cache did not show an outcome already recorded.
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if b.Status.Phase != v1alpha1.BackupRunning || (job != nil && b.Status.Job != job.Name) {
		return reconcile.Result{}, nil
	}
	repoObj, err := r.repository(ctx, b.Namespace, b.Spec.Repository)
	if err != nil {
		if isMissing(err) {
			return reconcile.Result{RequeueAfter: waitRetry}, nil
		}
		return reconcile.Result{}, err
	}
	repo, err := r.resolve(ctx, repoObj)
	if err != nil {
		if isMissing(err) {
			return reconcile.Result{RequeueAfter: waitRetry}, nil
		}
		return reconcile.Result{}, err
	}
	nn := client.ObjectKeyFromObject(b)
	s := r.light.reserve(key, r.wake.fn(nn))
	if s == nil {
		return reconcile.Result{}, nil
	}
	b = b.DeepCopy()
	s.run(func(ctx context.Context) {
		res, found, err := r.opts.Runner.FindBackup(ctx, repo, backupTag(b))
		switch {
		case ctx.Err() != nil:
		case err != nil:
			r.lookupFailed(b, repo, err)
		case found:
			r.finish(b, b.Status.Attempts, repo, res, nil, "")
		case job != nil:
			r.finish(b, b.Status.Attempts, repo, res,
				fmt.Errorf("job %s succeeded, but no snapshot tagged %s exists", job.Name, backupTag(b)), "")
		default:
			r.restartJob(ctx, b, repoObj)
		}
	})
	return reconcile.Result{}, nil
}

// restartJob runs a Backup whose Job is gone again in a new Job.
func (r *backupController) restartJob(ctx context.Context, b *v1alpha1.Backup, repoObj *v1alpha1.BackupRepository) {
	attempt := b.Status.Attempts + 1
	name := jobName(kindBackup, b.Name, attempt)
	if err := r.rerun(ctx, b, attempt, name); err != nil {
		return
	}
	b.Status.Attempts = attempt
	spec, err := r.opts.backupSpec(b)
	var job *batchv1.Job
	if err == nil {
		job, err = r.newJob(b, name, v1alpha1.LabelBackup, repoObj, BackupArgs(spec, append(slices.Clone(b.Spec.Tags), backupTag(b))), false)
	}
	if err == nil {
		err = r.client.Create(ctx, job)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		r.log.Error("cannot create Job", "backup", b.Namespace+"/"+b.Name, "job", name, "error", err.Error())
		r.wake.wake(client.ObjectKeyFromObject(b), waitRetry)
	}
}

// job returns the Job ns/name owned by uid, or nil when there is none.
// A miss in the cache is confirmed with the API server: the cache may not
// have seen a Job created a moment ago.
func (o *Operator) job(ctx context.Context, ns, name string, uid types.UID) (*batchv1.Job, error) {
	if name == "" {
		return nil, nil
	}
	var j batchv1.Job
	nn := types.NamespacedName{Namespace: ns, Name: name}
	err := o.client.Get(ctx, nn, &j)
	if apierrors.IsNotFound(err) {
		err = o.reader.Get(ctx, nn, &j)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Job %s: %w", nn, err)
	}
	if !metav1.IsControlledBy(&j, &metav1.ObjectMeta{UID: uid}) {
		return nil, nil
	}
	return &j, nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
