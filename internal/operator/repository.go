package operator

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

type repositoryController struct {
	*Operator
	wake waker
}

func (o *Operator) setupRepositories() error {
	r := &repositoryController{Operator: o}
	return builder.ControllerManagedBy(o.mgr).Named("backuprepository").
		For(&v1alpha1.BackupRepository{}).
		WatchesRawSource(r.wake.source()).
		Complete(r)
}

// Reconcile checks the repository when its spec changed or the last check
// is CheckInterval old (a failed one after a minute).
func (r *repositoryController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := "repository/" + req.String()
	var br v1alpha1.BackupRepository
	if err := r.client.Get(ctx, req.NamespacedName, &br); err != nil {
		if apierrors.IsNotFound(err) {
			r.light.cancel(key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if r.light.busy(key) {
		return reconcile.Result{}, nil
	}
	if wait := r.notDue(&br); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	// The cache may not have the last check's status yet.
	if err := r.reader.Get(ctx, req.NamespacedName, &br); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if wait := r.notDue(&br); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	err := checkSpec("BackupRepository", &br.Spec)
	var repo Repo
	if err == nil {
		repo, err = r.resolve(ctx, &br)
	}
	if err != nil {
		if errors.As(err, new(apierrors.APIStatus)) {
			return reconcile.Result{}, err
		}
		// A spec the CRD refuses, or a Secret or key that is missing,
		// empty or refused: the repository cannot be opened, and says so.
		return reconcile.Result{}, r.record(ctx, &br, br.Generation, Repo{}, err)
	}
	nn := req.NamespacedName
	s := r.light.reserve(key, r.wake.fn(nn))
	if s == nil {
		return reconcile.Result{}, nil
	}
	br = *br.DeepCopy()
	s.run(func(ctx context.Context) {
		err := r.opts.Runner.Check(ctx, repo)
		if ctx.Err() != nil {
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		if werr := r.record(wctx, &br, br.Generation, repo, err); werr != nil && !errors.Is(werr, errGone) {
			r.log.Error("cannot record a repository check", "repository", nn.String(), "error", repo.redact(werr.Error()))
			r.wake.wake(nn, waitRetry)
		}
	})
	return reconcile.Result{}, nil
}

// notDue returns how long until br is to be checked again, or 0 when it
// is due: its spec changed, or its last check is CheckInterval old (a
// failed one a minute).
func (r *repositoryController) notDue(br *v1alpha1.BackupRepository) time.Duration {
	st := br.Status
	if st.LastChecked == nil || st.ObservedGeneration != br.Generation {
		return 0
	}
	interval := r.opts.CheckInterval
	if st.Phase != v1alpha1.RepositoryReady {
		interval = min(interval, findRetry)
	}
	return max(st.LastChecked.Add(interval).Sub(r.opts.Clock.Now()), 0)
}

// record writes the outcome of a check of generation gen.
func (r *repositoryController) record(ctx context.Context, br *v1alpha1.BackupRepository, gen int64, repo Repo, checkErr error) error {
	phase, reason, msg := v1alpha1.RepositoryReady, "Opened", "the repository opens with the password"
	status := metav1.ConditionTrue
	if checkErr != nil {
		phase, reason, status = v1alpha1.RepositoryFailed, "CheckFailed", metav1.ConditionFalse
		msg = truncate(repo.redact(checkErr.Error()), maxMessage)
	}
	var prev v1alpha1.RepositoryPhase
	var fresh v1alpha1.BackupRepository
	fresh.UID = br.UID
	nn := types.NamespacedName{Namespace: br.Namespace, Name: br.Name}
	err := updateStatus(ctx, r.Operator, nn, &fresh, func(f *v1alpha1.BackupRepository) error {
		prev = f.Status.Phase
		now := r.now()
		f.Status.Phase = phase
		f.Status.Message = msg
		if checkErr == nil {
			f.Status.Message = ""
		}
		f.Status.LastChecked = &now
		f.Status.ObservedGeneration = gen
		setCondition(&f.Status.Conditions, now.Time, gen, v1alpha1.ConditionReady, status, reason, msg)
		return nil
	})
	if err != nil {
		return err
	}
	if prev != phase {
		r.event(&fresh, checkErr != nil, reason, "Check", msg)
		if checkErr != nil {
			r.log.Warn("repository check failed", "repository", nn.String(), "error", msg)
		} else {
			r.log.Info("repository ready", "repository", nn.String())
		}
	}
	return nil
}
