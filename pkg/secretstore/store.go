package secretstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/pullsecret"
)

// ErrNotManaged is returned when a Secret of the pull secret's name exists
// and is not regcred's: regcred never takes one over.
var ErrNotManaged = errors.New("exists and is not managed by regcred")

// ErrLeftInPlace is returned by Delete when the API server's policy
// refused the delete (the chart's ValidatingAdmissionPolicy: the Secret is
// not regcred's any more, or its namespace is excluded from regcred): the
// Secret stays, and the index forgets it.
var ErrLeftInPlace = errors.New("left in place: the API server's policy refuses regcred's delete")

// Store writes pull secrets and keeps the index of where they live. It
// makes no read of any Secret.
type Store struct {
	// API writes: it is never asked to read a Secret.
	API   client.Client
	Index *Index
	// Batch defers the index entry of a pull secret rewritten in place (one
	// the index knows already) by up to Batch, so that a fan-out across
	// thousands of namespaces writes each shard of the index once per
	// batch rather than once per Secret. Zero writes every entry at once.
	// An entry lost to a crash before its batch is written leaves the
	// previous one, whose older version the next sync rewrites.
	Batch time.Duration
	// Log reports batches that could not be written (they are retried).
	Log logr.Logger
	// Reader reads an index shard from the API server itself, when a
	// write finds an entry changed by another replica (default API, which
	// in regcred reads through the cache).
	Reader client.Reader
	// Raced, if set, is told of a pull secret whose content depends on its
	// hosts (a glob ECR registry), rewritten in place and recorded with a
	// batch, whose entry another replica changed meanwhile: which Secret
	// write landed last is unknown, so it must be written again, serving
	// e.Hosts. Its entry is pending already, for the sweeps.
	Raced func(e Entry)

	shards shardWriter
	// writing serialises this replica's writes of each pull secret whose
	// content depends on its hosts.
	writing keyLocks
	// refused remembers, until when, the pull secrets found to be a
	// Secret not regcred's (by namespace/name): see RefusedFor.
	refusedMu sync.Mutex
	refused   map[string]time.Time
	now       func() time.Time
}

// RefusedFor is how long a Secret found not to be regcred's is
// remembered: meanwhile, the admissions of its namespace that need it make
// no API call (a Secret regcred does not see, in a namespace whose every
// admission would try three writes); after, the next one tries again, and
// makes the pull secret if that Secret is gone.
const RefusedFor = time.Minute

// maxRefused bounds the Secrets remembered (beyond it, none is added).
const maxRefused = 10000

func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// wasRefused says whether namespace/name was found not to be regcred's
// within RefusedFor.
func (s *Store) wasRefused(namespace, name string) bool {
	s.refusedMu.Lock()
	defer s.refusedMu.Unlock()
	until, ok := s.refused[namespace+"/"+name]
	return ok && s.clock().Before(until)
}

// noteRefused remembers that err says namespace/name is not regcred's, or
// forgets that it was when err is nil.
func (s *Store) noteRefused(namespace, name string, err error) {
	if err != nil && !errors.Is(err, ErrNotManaged) {
		return
	}
	s.refusedMu.Lock()
	defer s.refusedMu.Unlock()
	key := namespace + "/" + name
	if err == nil {
		delete(s.refused, key)
		return
	}
	now := s.clock()
	if s.refused == nil {
		s.refused = map[string]time.Time{}
	}
	maps.DeleteFunc(s.refused, func(_ string, until time.Time) bool { return !now.Before(until) })
	if len(s.refused) < maxRefused {
		s.refused[key] = now.Add(RefusedFor)
	}
}

// FieldManager names regcred's writes in managedFields.
const FieldManager = "regcred"

// Apply makes sure namespace holds the pull secret w describes. When the
// index says it does already, it makes no API call. With dryRun it writes
// nothing and says what it would do.
func (s *Store) Apply(ctx context.Context, namespace string, w *pullsecret.Want, dryRun bool) (Outcome, error) {
	e, known := s.Index.Lookup(ctx, namespace, w.Registry, w.Exact())
	if known && e.Satisfies(w) {
		return Unchanged, nil
	}
	if e.Pending() {
		known = false // not written yet
	}
	if !known && s.wasRefused(namespace, w.Name) {
		return "", fmt.Errorf("secret %s/%s: %w", namespace, w.Name, ErrNotManaged)
	}
	if dryRun {
		if known {
			return WouldUpdate, nil
		}
		return s.probe(ctx, namespace, w)
	}
	out, err := s.write(ctx, namespace, w, known, e, false)
	s.noteRefused(namespace, w.Name, err)
	return out, err
}

// probe tells what writing a pull secret the index does not know would
// do, with the API server's dry runs: a create, and if a Secret of its
// name exists, the patch's tests, which refuse one not regcred's. It
// writes nothing.
func (s *Store) probe(ctx context.Context, namespace string, w *pullsecret.Want) (Outcome, error) {
	err := s.API.Create(ctx, w.Secret(namespace), client.DryRunAll, client.FieldOwner(FieldManager))
	if err == nil {
		return WouldCreate, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return "", describe(err, "creating", namespace, w.Name)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: w.Name}}
	err = s.API.Patch(ctx, secret, jsonPatch(managedTests(w.Registry)), client.DryRunAll, client.FieldOwner(FieldManager))
	switch {
	case isPatchRefused(err):
		err = fmt.Errorf("secret %s/%s: %w", namespace, w.Name, ErrNotManaged)
		s.noteRefused(namespace, w.Name, err)
		return "", err
	case apierrors.IsNotFound(err):
		return WouldCreate, nil // deleted meanwhile
	case err != nil:
		return "", describe(err, "updating", namespace, w.Name)
	}
	return WouldUpdate, nil
}

// managedTests are the JSON patch tests that refuse a Secret not
// regcred's: another type, or without regcred's labels for registry.
func managedTests(registry string) []map[string]any {
	return []map[string]any{
		{"op": "test", "path": "/type", "value": string(corev1.SecretTypeDockerConfigJson)},
		{"op": "test", "path": "/metadata/labels/" + escape(pullsecret.LabelManagedBy), "value": pullsecret.ManagedBy},
		{"op": "test", "path": "/metadata/labels/" + escape(pullsecret.LabelRegistry), "value": registry},
	}
}

// Restore writes the pull secret again whatever the index says: it was
// deleted or edited by someone else. One the index knows is patched first
// (a create follows if it is gone): rewriting a Secret that is there is
// one API call.
func (s *Store) Restore(ctx context.Context, namespace string, w *pullsecret.Want) (Outcome, error) {
	prev, known := s.Index.Lookup(ctx, namespace, w.Registry, w.Exact())
	return s.write(ctx, namespace, w, known && !prev.Pending(), prev, true)
}

// write creates the Secret, or patches the one regcred made, and records
// it in the index; exists says which to try first, prev is what the index
// knew of it; restore writes it even if the index says it is written.
func (s *Store) write(ctx context.Context, namespace string, w *pullsecret.Want, exists bool, prev Entry, restore bool) (Outcome, error) {
	if w.Widen != nil {
		return s.writeHosts(ctx, namespace, w, restore)
	}
	out, uid, err := s.put(ctx, namespace, w, exists, prev)
	if err != nil {
		return "", err
	}
	return out, s.record(ctx, namespace, w, uid, inPlace(out, prev))
}

// inPlace reports whether a write rewrote a Secret the index has an entry
// for already, of which only the version changes: that entry can wait
// for a batch.
func inPlace(out Outcome, prev Entry) bool {
	return out == Updated && prev.Version != "" && !prev.Pending()
}

// put creates the Secret, or patches the one regcred made; exists says
// which to try first.
func (s *Store) put(ctx context.Context, namespace string, w *pullsecret.Want, exists bool, prev Entry) (Outcome, types.UID, error) {
	for range 3 {
		if !exists {
			uid, err := s.create(ctx, namespace, w)
			if err == nil {
				return Created, uid, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return "", "", err
			}
		}
		uid, err := s.patch(ctx, namespace, w, prev)
		if err == nil {
			return Updated, uid, nil
		}
		if !apierrors.IsNotFound(err) {
			return "", "", err
		}
		exists = false // deleted meanwhile: create it again
	}
	return "", "", fmt.Errorf("secret %s/%s: created and deleted by someone else over and over", namespace, w.Name)
}

// AnnotationVersion records, on each pull secret, the version of its
// content (pullsecret.Want.Version).
const AnnotationVersion = "regcred.io/version"

func (s *Store) create(ctx context.Context, namespace string, w *pullsecret.Want) (types.UID, error) {
	secret := w.Secret(namespace)
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[AnnotationVersion] = w.Version()
	if err := s.API.Create(ctx, secret, client.FieldOwner(FieldManager)); err != nil {
		return "", describe(err, "creating", namespace, w.Name)
	}
	return secret.UID, nil
}

// patch rewrites the content of a Secret regcred made. Its test operations
// make the API server refuse, atomically, a Secret that is not regcred's:
// another type, or without regcred's labels. prev is what the index knew
// of the Secret: an expiry annotation to remove, if any.
func (s *Store) patch(ctx context.Context, namespace string, w *pullsecret.Want, prev Entry) (types.UID, error) {
	tests := append(managedTests(w.Registry),
		map[string]any{"op": "replace", "path": "/data", "value": map[string]string{corev1.DockerConfigJsonKey: base64.StdEncoding.EncodeToString(w.Data)}})
	annotations := map[string]string{AnnotationVersion: w.Version()}
	if at := w.ExpiresAtString(); at != "" {
		annotations[pullsecret.AnnotationExpiresAt] = at
	}
	ops := slices.Clone(tests)
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations/" + escape(k), "value": annotations[k]})
	}
	if !prev.ExpiresAt.IsZero() && w.ExpiresAt.IsZero() {
		ops = append(ops, map[string]any{"op": "remove", "path": "/metadata/annotations/" + escape(pullsecret.AnnotationExpiresAt)})
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: w.Name}}
	err := s.API.Patch(ctx, secret, jsonPatch(ops), client.FieldOwner(FieldManager))
	if isPatchRefused(err) {
		// Not regcred's, or without the annotations the patch adds to (made
		// before the index, or edited by hand): the second try sets
		// regcred's annotations whole, with the same tests.
		whole := append(tests, map[string]any{"op": "add", "path": "/metadata/annotations", "value": annotations})
		err = s.API.Patch(ctx, secret, jsonPatch(whole), client.FieldOwner(FieldManager))
		if isPatchRefused(err) {
			return "", fmt.Errorf("secret %s/%s: %w", namespace, w.Name, ErrNotManaged)
		}
	}
	if err != nil {
		return "", describe(err, "updating", namespace, w.Name)
	}
	return secret.UID, nil
}

// record writes the index entry of a pull secret just written; deferred
// writes it with the next batch (Batch).
func (s *Store) record(ctx context.Context, namespace string, w *pullsecret.Want, uid types.UID, deferred bool) error {
	e := entryOf(namespace, w, uid)
	l := s.Index.remember(e, false)
	k := key(namespace, w.Registry, e.Exact)
	if deferred && s.Batch > 0 {
		s.deferEntry(ShardOf(namespace), k, e.value(), nil)
		return nil
	}
	if err := s.patchShard(ctx, namespace, map[string]any{k: e.value()}); err != nil {
		// Not recorded: the overlay must not say it is, or the retry the
		// caller makes would find it done, and no sweep would ever see
		// the secret to keep it fresh.
		s.Index.unremember(k, l)
		return fmt.Errorf("recording pull secret %s/%s in the index: %w", namespace, w.Name, err)
	}
	return nil
}

// entryOf is the index entry of w, written in namespace as the Secret of
// UID uid.
func entryOf(namespace string, w *pullsecret.Want, uid types.UID) Entry {
	return Entry{Namespace: namespace, Registry: w.Registry, Exact: w.Exact(), UID: uid, Version: w.Version(), Shape: w.Shape(), ExpiresAt: w.ExpiresAt, Hosts: w.Hosts}
}

// Delete removes a pull secret regcred made, bound to the UID the index
// recorded, and its index entry. A Secret that is gone already, or that
// was replaced by someone else's, is left as it is. One of regcred's of
// another UID that the index does not record (an entry written over with
// an older one) is deleted in its place.
func (s *Store) Delete(ctx context.Context, e Entry, secretName string) error {
	return s.delete(ctx, e, secretName, true)
}

// delete is Delete; rebind allows binding the entry to regcred's Secret of
// another UID and deleting that, once.
func (s *Store) delete(ctx context.Context, e Entry, secretName string, rebind bool) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: secretName}}
	var opts []client.DeleteOption
	if e.UID != "" {
		opts = append(opts, client.Preconditions{UID: &e.UID})
	}
	err := s.API.Delete(ctx, secret, opts...)
	switch {
	case apierrors.IsConflict(err) && rebind:
		// Another Secret of the name. regcred's, and the index still
		// records the old one (no replica recorded the new): bind the
		// entry to it and delete it. Left to the next sweep if that
		// cannot be told now.
		uid, ours, err := s.managedUID(ctx, e, secretName)
		if err != nil {
			return describe(err, "another Secret of the name is there, and whether it is regcred's cannot be told now", e.Namespace, secretName)
		}
		if ours {
			bound, ok, err := s.rebind(ctx, e, uid)
			if err != nil {
				return err
			}
			if ok {
				return s.delete(ctx, bound, secretName, false)
			}
		}
	case apierrors.IsConflict(err):
	case err == nil, apierrors.IsNotFound(err):
	case refusedByPolicy(err):
		// Not regcred's any more (its labels were removed), or in a
		// namespace excluded since: leave it, and forget it.
		if err := s.forgetSecret(ctx, e); err != nil {
			return err
		}
		return fmt.Errorf("secret %s/%s: %w", e.Namespace, secretName, ErrLeftInPlace)
	default:
		return describe(err, "deleting", e.Namespace, secretName)
	}
	return s.forgetSecret(ctx, e)
}

// managedUID returns the UID of the Secret of secretName in e's namespace
// and whether it is regcred's, for e's registry, and not of e's UID: a
// dry-run patch of the tests that refuse another's, which writes nothing.
// It fails only when that cannot be told.
func (s *Store) managedUID(ctx context.Context, e Entry, secretName string) (types.UID, bool, error) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: secretName}}
	tests := managedTests(e.Registry)
	err := s.API.Patch(ctx, secret, jsonPatch(tests), client.DryRunAll, client.FieldOwner(FieldManager))
	switch {
	case isPatchRefused(err), apierrors.IsNotFound(err):
		return "", false, nil // someone else's, or gone
	case err != nil:
		return "", false, err
	}
	return secret.UID, secret.UID != "" && secret.UID != e.UID, nil
}

// rebind records, in place of e, e bound to the Secret of UID uid, if the
// shard still holds e, and returns it and whether it did: an entry
// another replica changed since is its, and so is this replica's own
// waiting for a batch.
func (s *Store) rebind(ctx context.Context, e Entry, uid types.UID) (Entry, bool, error) {
	k := key(e.Namespace, e.Registry, e.Exact)
	shard := ShardOf(e.Namespace)
	unlock, err := s.shards.lock(ctx, shard)
	if err != nil {
		return Entry{}, false, fmt.Errorf("binding pull secret %s of registry %s in the index to the Secret that exists: %w", e.Namespace, e.Registry, err)
	}
	defer unlock()
	if _, waits := s.shards.waiting(shard, k); waits {
		return Entry{}, false, nil
	}
	bound := e
	bound.UID = uid
	// One patch whose test requires e, not swapLocked: a shard that
	// records the new Secret already (another replica made and recorded
	// it, with a config that wants it) is that replica's to decide on, not
	// a binding of this one's to delete.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: shard}}
	err = s.API.Patch(ctx, cm, jsonPatch([]map[string]any{testOp(k, e.value()), {"op": "add", "path": dataPath(k), "value": bound.value()}}), client.FieldOwner(FieldManager))
	switch {
	case err == nil:
		s.Index.remember(bound, false)
		return bound, true, nil
	case isPatchRefused(err), apierrors.IsNotFound(err):
		return Entry{}, false, nil // changed since: another replica's entry
	default:
		return Entry{}, false, fmt.Errorf("binding pull secret %s of registry %s in the index to the Secret that exists: %w", e.Namespace, e.Registry, err)
	}
}

// forgetSecret removes e's index entry if it still records the Secret of
// e's UID: another replica that made the Secret again meanwhile (a new
// UID: the config it read says the registry serves the namespace) keeps
// its entry, and the next sweep decides on that Secret.
func (s *Store) forgetSecret(ctx context.Context, e Entry) error {
	k := key(e.Namespace, e.Registry, e.Exact)
	shard := ShardOf(e.Namespace)
	unlock, err := s.shards.lock(ctx, shard)
	if err != nil {
		return fmt.Errorf("forgetting pull secret %s of registry %s in the index: %w", e.Namespace, e.Registry, err)
	}
	defer unlock()
	// This replica's entry waiting for a batch goes with the entry, unless
	// it is of another Secret (kept, as the shard's is).
	forgotten := func() {
		if d, ok := s.shards.waiting(shard, k); ok {
			if d.value != "" {
				if w, _ := parseEntry(k, d.value); w.UID != e.UID {
					return
				}
			}
			s.shards.dropKey(shard, k)
		}
		s.Index.learn(k, "")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: shard}}
	raw := e.value()
	for range 3 {
		err := s.API.Patch(ctx, cm, jsonPatch([]map[string]any{testOp(k, raw), {"op": "remove", "path": dataPath(k)}}), client.FieldOwner(FieldManager))
		switch {
		case err == nil, apierrors.IsNotFound(err):
			forgotten()
			return nil
		case !isPatchRefused(err):
			return fmt.Errorf("forgetting pull secret %s of registry %s in the index: %w", e.Namespace, e.Registry, err)
		}
		var fresh corev1.ConfigMap
		if err := s.reader().Get(ctx, client.ObjectKeyFromObject(cm), &fresh); err != nil {
			if apierrors.IsNotFound(err) {
				forgotten()
				return nil
			}
			return fmt.Errorf("forgetting pull secret %s of registry %s in the index: %w", e.Namespace, e.Registry, err)
		}
		cur := fresh.Data[k]
		if cur == "" {
			forgotten()
			return nil
		}
		if now, _ := parseEntry(k, cur); now.UID != e.UID {
			s.Index.learn(k, cur)
			return nil
		}
		raw = cur // the same Secret, rewritten meanwhile
	}
	return fmt.Errorf("forgetting pull secret %s of registry %s in the index: changed by others over and over", e.Namespace, e.Registry)
}

// refusedByPolicy reports whether the API server refused a request by a
// ValidatingAdmissionPolicy: 422 Invalid when the validation sets no
// reason (the chart's), 403 Forbidden when it says so.
func refusedByPolicy(err error) bool {
	return (apierrors.IsInvalid(err) || apierrors.IsForbidden(err)) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
}

// Forget removes an index entry (its namespace is gone, or its Secret is
// not regcred's any more).
func (s *Store) Forget(ctx context.Context, e Entry) error {
	s.Index.remember(Entry{Namespace: e.Namespace, Registry: e.Registry, Exact: e.Exact}, true)
	return s.patchShard(ctx, e.Namespace, map[string]any{key(e.Namespace, e.Registry, e.Exact): nil})
}

// patchShard merges data into a namespace's shard, at once: entries of the
// same keys waiting for a batch are dropped, as data supersedes them.
func (s *Store) patchShard(ctx context.Context, namespace string, data map[string]any) error {
	name := ShardOf(namespace)
	unlock, err := s.shards.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	s.shards.drop(name, data)
	return s.mergeShard(ctx, name, data)
}

// mergeShard merges data into a shard, creating it if needed. A merge
// patch touches only its own keys: replicas writing different entries
// never conflict. The caller holds the shard's lock.
func (s *Store) mergeShard(ctx context.Context, name string, data map[string]any) error {
	body, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: name}}
	for range 3 {
		err = s.API.Patch(ctx, cm, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldManager))
		if !apierrors.IsNotFound(err) {
			return err
		}
		shard := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: name,
			Labels: map[string]string{LabelIndex: IndexValue, pullsecret.LabelManagedBy: pullsecret.ManagedBy}}}
		if err = s.API.Create(ctx, shard, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return err
}

func jsonPatch(ops []map[string]any) client.Patch {
	body, _ := json.Marshal(ops) // maps of strings always marshal
	return client.RawPatch(types.JSONPatchType, body)
}

// escape escapes a JSON pointer segment (RFC 6901).
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// isPatchRefused reports whether the API server refused a JSON patch
// because one of its operations did not apply (a test that failed, a path
// that does not exist): it answers 422 Invalid.
func isPatchRefused(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && status.Status().Code == http.StatusUnprocessableEntity
}

// describe says what failed and where; the API's message about a Secret
// never holds its data.
func describe(err error, doing, namespace, name string) error {
	return fmt.Errorf("secret %s/%s: %s: %w", namespace, name, doing, err)
}
