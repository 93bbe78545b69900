package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

type restoreController struct {
	*Operator
	wake waker
}

func (o *Operator) setupRestores() error {
	r := &restoreController{Operator: o}
	b := builder.ControllerManagedBy(o.mgr).Named("restore").
		For(&v1alpha1.Restore{}).
		Watches(&v1alpha1.BackupRepository{}, handler.EnqueueRequestsFromMapFunc(r.waitingForRepository)).
		// A Backup that completes starts the Restores waiting for it.
		Watches(&v1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(r.waitingForBackup)).
		WatchesRawSource(r.wake.source())
	if o.opts.Mode == ModeJob {
		b = b.Owns(&batchv1.Job{})
	}
	return b.Complete(r)
}

func (r *restoreController) waiting(ctx context.Context, ns, field, value string) []reconcile.Request {
	var list v1alpha1.RestoreList
	if err := r.client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{field: value}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, x := range list.Items {
		if x.Status.Phase == "" || x.Status.Phase == v1alpha1.RestorePending {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: x.Namespace, Name: x.Name}})
		}
	}
	return reqs
}

func (r *restoreController) waitingForRepository(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.waiting(ctx, obj.GetNamespace(), indexRepository, obj.GetName())
}

func (r *restoreController) waitingForBackup(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.waiting(ctx, obj.GetNamespace(), indexBackupName, obj.GetName())
}

// Reconcile moves a Restore along Pending → Running → Completed,
// PartiallyFailed or Failed.
func (r *restoreController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := kindRestore + "/" + req.String()
	var x v1alpha1.Restore
	if err := r.client.Get(ctx, req.NamespacedName, &x); err != nil {
		if apierrors.IsNotFound(err) {
			r.work.cancel(key)
			r.running.set(kindRestore, req.NamespacedName, false)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	r.running.set(kindRestore, req.NamespacedName, x.Status.Phase == v1alpha1.RestoreRunning || r.work.busy(key))
	switch x.Status.Phase {
	case v1alpha1.RestoreCompleted, v1alpha1.RestorePartiallyFailed, v1alpha1.RestoreFailed:
		return reconcile.Result{}, nil
	case v1alpha1.RestoreRunning:
		if r.opts.Mode == ModeJob {
			return r.trackJob(ctx, &x)
		}
		return r.resume(ctx, key, &x)
	default:
		return r.begin(ctx, key, &x)
	}
}

// snapshot returns the snapshot x restores: spec.snapshot, or the
// snapshot of spec.backupName once that Backup has completed.
func (r *restoreController) snapshot(ctx context.Context, x *v1alpha1.Restore) (snap string, failed string, err error) {
	switch {
	case x.Spec.BackupName == "" && x.Spec.Snapshot == "":
		return "", "neither snapshot nor backupName is set", nil
	case x.Spec.BackupName == "":
		return x.Spec.Snapshot, "", nil
	case x.Spec.Snapshot != "":
		// The CRD's rule, which an object stored without it may break.
		return "", "both snapshot and backupName are set: give exactly one", nil
	}
	var b v1alpha1.Backup
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: x.Namespace, Name: x.Spec.BackupName}, &b); err != nil {
		if apierrors.IsNotFound(err) {
			return "", "", &missingError{what: fmt.Sprintf("Backup %s/%s", x.Namespace, x.Spec.BackupName)}
		}
		return "", "", err
	}
	switch b.Status.Phase {
	case v1alpha1.BackupCompleted:
		if b.Status.SnapshotID == "" {
			return "", fmt.Sprintf("Backup %s completed without a snapshot ID", b.Name), nil
		}
		return b.Status.SnapshotID, "", nil
	case v1alpha1.BackupFailed:
		return "", fmt.Sprintf("Backup %s failed: nothing to restore", b.Name), nil
	}
	return "", "", &missingError{what: fmt.Sprintf("a completed Backup %s/%s", x.Namespace, x.Spec.BackupName)}
}

func (r *restoreController) pending(ctx context.Context, x *v1alpha1.Restore, why error) (reconcile.Result, error) {
	var res reconcile.Result
	switch {
	case isMissing(why):
		res.RequeueAfter = waitRetry
	case isRefused(why):
		return reconcile.Result{}, r.failNow(ctx, x, why.Error())
	case why != nil:
		return reconcile.Result{}, why
	}
	msg := "waiting for a free worker"
	if why != nil {
		msg = "waiting: " + why.Error()
	}
	if x.Status.Phase == v1alpha1.RestorePending && x.Status.Message == msg {
		return res, nil
	}
	x.Status.Phase = v1alpha1.RestorePending
	x.Status.Message = msg
	setCondition(&x.Status.Conditions, r.now().Time, x.Generation, v1alpha1.ConditionCompleted, metav1.ConditionUnknown, "Pending", msg)
	return res, r.client.Status().Update(ctx, x)
}

func (r *restoreController) begin(ctx context.Context, key string, x *v1alpha1.Restore) (reconcile.Result, error) {
	if r.work.busy(key) {
		return reconcile.Result{}, nil // started; the cache has not seen it yet
	}
	if err := checkSpec("Restore", &x.Spec); err != nil {
		return reconcile.Result{}, r.failNow(ctx, x, err.Error())
	}
	if _, err := labels.Parse(x.Spec.LabelSelector); err != nil {
		return reconcile.Result{}, r.failNow(ctx, x, fmt.Sprintf("labelSelector %q: %v", x.Spec.LabelSelector, err))
	}
	for k := range x.Spec.NamespaceMapping {
		// The CRD checks the values; a key is checked here (the API
		// server cannot afford a rule over unbounded map keys).
		if errs := validation.IsDNS1123Label(k); len(errs) > 0 {
			return reconcile.Result{}, r.failNow(ctx, x, fmt.Sprintf("namespaceMapping: %q is not a namespace name: %s", k, strings.Join(errs, "; ")))
		}
	}
	if _, _, err := r.opts.restoreSpec(x); err != nil {
		return reconcile.Result{}, r.failNow(ctx, x, err.Error())
	}
	snap, failed, err := r.snapshot(ctx, x)
	if err != nil {
		return r.pending(ctx, x, err)
	}
	if failed != "" {
		return reconcile.Result{}, r.failNow(ctx, x, failed)
	}
	repoObj, err := r.repository(ctx, x.Namespace, x.Spec.Repository)
	if err == nil {
		err = checkRepository(repoObj)
	}
	if err != nil {
		return r.pending(ctx, x, err)
	}
	if r.opts.Mode == ModeJob {
		// The Job reads the Secrets itself; they are checked here so
		// that a refused one fails the Restore before any Job runs.
		if _, err := r.resolve(ctx, repoObj); err != nil {
			return r.pending(ctx, x, err)
		}
		return reconcile.Result{}, r.startJob(ctx, x, repoObj, snap, "")
	}
	repo, err := r.resolve(ctx, repoObj)
	if err != nil {
		return r.pending(ctx, x, err)
	}
	nn := client.ObjectKeyFromObject(x)
	s := r.work.reserve(key, r.wake.fn(nn))
	if s == nil {
		return r.pending(ctx, x, nil)
	}
	attempt := x.Status.Attempts + 1
	r.markRunning(x, attempt, snap, "restoring snapshot "+shortID(snap))
	if err := r.client.Status().Update(ctx, x); err != nil {
		s.release()
		return reconcile.Result{}, err
	}
	r.running.set(kindRestore, nn, true)
	r.event(x, false, "Started", "Restore", fmt.Sprintf("restoring snapshot %s from BackupRepository %s (attempt %d)", shortID(snap), repoObj.Name, attempt))
	x = x.DeepCopy()
	s.run(func(ctx context.Context) { r.run(ctx, x, repo, attempt) })
	return reconcile.Result{}, nil
}

func (r *restoreController) markRunning(x *v1alpha1.Restore, attempt int32, snap, msg string) {
	now := r.now()
	x.Status.Phase = v1alpha1.RestoreRunning
	x.Status.Attempts = attempt
	x.Status.SnapshotID = snap
	if x.Status.StartTime == nil {
		x.Status.StartTime = &now
	}
	x.Status.Message = msg
	setCondition(&x.Status.Conditions, now.Time, x.Generation, v1alpha1.ConditionCompleted, metav1.ConditionUnknown, "Running", msg)
}

func (r *restoreController) run(ctx context.Context, x *v1alpha1.Restore, repo Repo, attempt int32) {
	spec, cluster, err := r.opts.restoreSpec(x)
	var res RestoreResult
	if err == nil {
		res, err = r.opts.Runner.Restore(ctx, RestoreRequest{Repo: repo, Snapshot: x.Status.SnapshotID, Spec: spec, ClusterResources: cluster})
	}
	if ctx.Err() != nil {
		r.log.Info("restore interrupted; the next operator start runs it again", "restore", x.Namespace+"/"+x.Name)
		return
	}
	r.finish(x, attempt, repo, res, true, err)
}

// finish records the outcome of attempt of x; counted says res holds
// real counts (job mode has none).
func (r *restoreController) finish(x *v1alpha1.Restore, attempt int32, repo Repo, res RestoreResult, counted bool, runErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	nn := client.ObjectKeyFromObject(x)
	phase, result, reason := v1alpha1.RestoreCompleted, resultCompleted, "Succeeded"
	var msg string
	switch {
	case runErr != nil:
		phase, result, reason = v1alpha1.RestoreFailed, resultFailed, "RestoreFailed"
		msg = truncate(repo.redact(runErr.Error()), maxMessage)
	case res.Partial || res.Failed > 0:
		phase, result, reason = v1alpha1.RestorePartiallyFailed, resultPartiallyFailed, "PartiallyFailed"
		msg = fmt.Sprintf("%d objects restored, %d skipped, %d failed", res.Restored, res.Skipped, res.Failed)
		if !counted {
			msg = "some objects could not be restored (the Job's log has the counts)"
		}
	case counted:
		msg = fmt.Sprintf("%d objects restored, %d skipped", res.Restored, res.Skipped)
	default:
		msg = "restored (the Job's log has the counts)"
	}
	if x.Spec.DryRun && runErr == nil {
		msg = "dry run: " + msg
	}
	var final v1alpha1.Restore
	final.UID = x.UID
	err := updateStatus(ctx, r.Operator, nn, &final, func(f *v1alpha1.Restore) error {
		if f.Status.Phase != v1alpha1.RestoreRunning || f.Status.Attempts != attempt {
			return errGone
		}
		now := r.now()
		f.Status.Phase = phase
		f.Status.CompletionTime = &now
		f.Status.Message = msg
		f.Status.Restored, f.Status.Skipped, f.Status.Failed = res.Restored, res.Skipped, res.Failed
		if phase == v1alpha1.RestoreFailed {
			setCondition(&f.Status.Conditions, now.Time, f.Generation, v1alpha1.ConditionCompleted, metav1.ConditionFalse, "Failed", msg)
		} else {
			setCondition(&f.Status.Conditions, now.Time, f.Generation, v1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, msg)
		}
		if phase != v1alpha1.RestoreCompleted {
			setCondition(&f.Status.Conditions, now.Time, f.Generation, v1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errGone) {
			r.log.Error("cannot record the outcome of a restore", "restore", nn.String(), "error", repo.redact(err.Error()))
			r.wake.wake(nn, waitRetry)
		}
		return
	}
	r.metrics.restores.WithLabelValues(final.Namespace, result).Inc()
	r.event(&final, phase != v1alpha1.RestoreCompleted, string(phase), "Restore", msg)
	r.log.Info("restore ended", "restore", nn.String(), "phase", string(phase), "message", msg)
}

func (r *restoreController) failNow(ctx context.Context, x *v1alpha1.Restore, msg string) error {
	now := r.now()
	x.Status.Phase = v1alpha1.RestoreFailed
	x.Status.Message = msg
	x.Status.CompletionTime = &now
	setCondition(&x.Status.Conditions, now.Time, x.Generation, v1alpha1.ConditionCompleted, metav1.ConditionFalse, "Failed", msg)
	setCondition(&x.Status.Conditions, now.Time, x.Generation, v1alpha1.ConditionFailed, metav1.ConditionTrue, "InvalidSpec", msg)
	if err := r.client.Status().Update(ctx, x); err != nil {
		return err
	}
	r.metrics.restores.WithLabelValues(x.Namespace, resultFailed).Inc()
	r.event(x, true, "Failed", "Restore", msg)
	return nil
}

// resume runs a Restore found Running that no goroutine of this process
// runs again: restores are idempotent with existing=skip, and with
// existing=update a second run writes the same objects again.
func (r *restoreController) resume(ctx context.Context, key string, x *v1alpha1.Restore) (reconcile.Result, error) {
	if r.work.busy(key) {
		return reconcile.Result{}, nil
	}
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(x), x); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if x.Status.Phase != v1alpha1.RestoreRunning {
		return reconcile.Result{}, nil
	}
	repoObj, err := r.repository(ctx, x.Namespace, x.Spec.Repository)
	if err == nil {
		var repo Repo
		if repo, err = r.resolve(ctx, repoObj); err == nil {
			nn := client.ObjectKeyFromObject(x)
			s := r.work.reserve(key, r.wake.fn(nn))
			if s == nil {
				return reconcile.Result{}, nil
			}
			x = x.DeepCopy()
			s.run(func(ctx context.Context) {
				attempt := x.Status.Attempts + 1
				if err := r.rerun(ctx, x, attempt, ""); err != nil {
					return
				}
				r.run(ctx, x, repo, attempt)
			})
			return reconcile.Result{}, nil
		}
	}
	if isMissing(err) {
		r.log.Warn("cannot resume restore", "restore", x.Namespace+"/"+x.Name, "error", err.Error())
		return reconcile.Result{RequeueAfter: waitRetry}, nil
	}
	return reconcile.Result{}, err
}

// rerun records that x runs again as attempt, in job (when not "").
func (r *restoreController) rerun(ctx context.Context, x *v1alpha1.Restore, attempt int32, job string) error {
	prev := x.Status.Attempts
	msg := "running again after an operator restart"
	var fresh v1alpha1.Restore
	fresh.UID = x.UID
	err := updateStatus(ctx, r.Operator, client.ObjectKeyFromObject(x), &fresh, func(f *v1alpha1.Restore) error {
		if f.Status.Phase != v1alpha1.RestoreRunning || f.Status.Attempts != prev {
			return errGone
		}
		r.markRunning(f, attempt, f.Status.SnapshotID, msg)
		if job != "" {
			f.Status.Job = job
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errGone) && ctx.Err() == nil {
			r.wake.wake(client.ObjectKeyFromObject(x), waitRetry)
		}
		return err
	}
	r.event(&fresh, false, "Resumed", "Restore", fmt.Sprintf("%s (attempt %d)", msg, attempt))
	return nil
}

func (r *restoreController) startJob(ctx context.Context, x *v1alpha1.Restore, repoObj *v1alpha1.BackupRepository, snap, msg string) error {
	attempt := x.Status.Attempts + 1
	name := jobName(kindRestore, x.Name, attempt)
	spec, cluster, err := r.opts.restoreSpec(x)
	if err != nil {
		return err
	}
	job, err := r.newJob(x, name, v1alpha1.LabelRestore, repoObj, RestoreArgs(spec, snap, cluster), true)
	if err != nil {
		return err
	}
	if msg == "" {
		msg = "running in Job " + name
	}
	r.markRunning(x, attempt, snap, msg)
	x.Status.Job = name
	if err := r.client.Status().Update(ctx, x); err != nil {
		return err
	}
	r.running.set(kindRestore, client.ObjectKeyFromObject(x), true)
	if err := r.client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	r.event(x, false, "Started", "Restore", fmt.Sprintf("restoring snapshot %s from BackupRepository %s in Job %s (attempt %d)", shortID(snap), repoObj.Name, name, attempt))
	return nil
}

// trackJob follows the Job of a Running Restore (job mode); a Job that is
// gone is started again.
func (r *restoreController) trackJob(ctx context.Context, x *v1alpha1.Restore) (reconcile.Result, error) {
	job, err := r.job(ctx, x.Namespace, x.Status.Job, x.UID)
	if err != nil {
		return reconcile.Result{}, err
	}
	if job != nil && job.DeletionTimestamp != nil {
		if done, _, _, _ := jobOutcome(job); !done {
			job = nil // being deleted: its pod is killed
		}
	}
	if job == nil {
		repoObj, err := r.repository(ctx, x.Namespace, x.Spec.Repository)
		if err != nil {
			if isMissing(err) {
				return reconcile.Result{RequeueAfter: waitRetry}, nil
			}
			return reconcile.Result{}, err
		}
		// Written with the cached object's resourceVersion: a stale view
		// conflicts instead of starting a second Job.
		return reconcile.Result{}, r.startJob(ctx, x, repoObj, x.Status.SnapshotID, "running again after an operator restart")
	}
	done, ok, partial, msg := jobOutcome(job)
	switch {
	case !done:
	case ok:
		r.finish(x, x.Status.Attempts, Repo{}, RestoreResult{}, false, nil)
	case partial:
		r.finish(x, x.Status.Attempts, Repo{}, RestoreResult{Partial: true}, false, nil)
	default:
		r.finish(x, x.Status.Attempts, Repo{}, RestoreResult{}, false, fmt.Errorf("job %s failed: %s", job.Name, msg))
	}
	return reconcile.Result{}, nil
}
