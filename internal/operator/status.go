package operator

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxMessage bounds status messages and event notes.
const maxMessage = 1024

// setCondition sets a condition, keeping its transition time when the
// status does not change.
func setCondition(conds *[]metav1.Condition, now time.Time, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, maxMessage),
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(now),
	})
}

func (o *Operator) now() metav1.Time {
	// The API server keeps seconds; so do we, so that what we write
	// compares equal to what we read back.
	return metav1.NewTime(o.opts.Clock.Now().Truncate(time.Second))
}

// errGone means the object changed hands: it was deleted, replaced, or
// its attempt was taken over; the writer drops its result.
var errGone = fmt.Errorf("object was deleted or changed hands")

// updateStatus re-reads obj (uncached, so a finished worker never writes
// over newer state), lets edit change it, and writes its status, retrying
// on conflicts. edit returns errGone to give up.
func updateStatus[T client.Object](ctx context.Context, o *Operator, nn types.NamespacedName, obj T, edit func(T) error) error {
	uid := obj.GetUID()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := o.reader.Get(ctx, nn, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return errGone
			}
			return err
		}
		if uid != "" && obj.GetUID() != uid {
			return errGone
		}
		if err := edit(obj); err != nil {
			return err
		}
		return o.client.Status().Update(ctx, obj)
	})
}

// event records an event on obj; note is formatted by the caller and
// already redacted.
func (o *Operator) event(obj client.Object, warning bool, reason, action, note string) {
	typ := "Normal"
	if warning {
		typ = "Warning"
	}
	o.recorder.Eventf(obj, nil, typ, reason, action, "%s", truncate(note, maxMessage))
}
