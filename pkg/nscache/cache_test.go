package nscache

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	fcache "k8s.io/client-go/tools/cache/testing"
)

func ns(name string, labels map[string]string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}}}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	maps.Copy(m.Labels, labels)
	return m
}

// changes records what OnChange tells.
type changes struct {
	mu    sync.Mutex
	names []string
}

func (c *changes) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
}

func (c *changes) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.names
	c.names = nil
	slices.Sort(out)
	return out
}

func newCache() (*Cache, store, *changes) {
	c := New(nil)
	ch := &changes{}
	c.OnChange(ch.add)
	return c, store{c}, ch
}

func TestLabelsAreTheNamespacesOwnAndTheCallers(t *testing.T) {
	c, s, _ := newCache()
	if err := s.Replace([]any{ns("team-a", map[string]string{"team": "a"})}, "1"); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Labels("team-a")
	want := map[string]string{"team": "a", corev1.LabelMetadataName: "team-a"}
	if !ok || !maps.Equal(got, want) {
		t.Fatalf("Labels(team-a) = %v, %v; want %v", got, ok, want)
	}
	got["team"] = "changed by the caller"
	delete(got, corev1.LabelMetadataName)
	if again, _ := c.Labels("team-a"); !maps.Equal(again, want) {
		t.Fatalf("a caller's change reached the cache: %v", again)
	}
	if got, ok := c.Labels("absent"); ok || got != nil {
		t.Fatalf("Labels(absent) = %v, %v", got, ok)
	}
}

func TestANameLabelThatIsNotTheNameIsKept(t *testing.T) {
	c, s, _ := newCache()
	odd := ns("odd", nil)
	odd.Labels[corev1.LabelMetadataName] = "other"
	bare := ns("bare", nil)
	delete(bare.Labels, corev1.LabelMetadataName)
	if err := s.Replace([]any{odd, bare}, "1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Labels("odd"); !maps.Equal(got, map[string]string{corev1.LabelMetadataName: "other"}) {
		t.Fatalf("Labels(odd) = %v", got)
	}
	if got, ok := c.Labels("bare"); !ok || len(got) != 0 {
		t.Fatalf("Labels(bare) = %v, %v", got, ok)
	}
}

func TestNamespacesWithTheSameLabelsShareThem(t *testing.T) {
	c, s, _ := newCache()
	var list []any
	for i := range 1000 {
		list = append(list, ns(fmt.Sprintf("ns-%d", i), map[string]string{"team": fmt.Sprint(i % 3)}))
	}
	if err := s.Replace(list, "1"); err != nil {
		t.Fatal(err)
	}
	if len(c.sets) != 3 || c.count() != 1000 {
		t.Fatalf("%d namespaces in %d label sets; want 1000 in 3", c.count(), len(c.sets))
	}
	// Relabelled into a new set, then every namespace of a set deleted:
	// the sets follow, none leaks.
	if err := s.Update(ns("ns-0", map[string]string{"team": "new"})); err != nil {
		t.Fatal(err)
	}
	if len(c.sets) != 4 {
		t.Fatalf("%d label sets after a relabel; want 4", len(c.sets))
	}
	for i := 0; i < 1000; i += 3 {
		if err := s.Delete(ns(fmt.Sprintf("ns-%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.sets) != 2 || c.count() != 666 {
		t.Fatalf("%d namespaces in %d label sets; want 666 in 2", c.count(), len(c.sets))
	}
}

func TestChangesAreRelabelsAndDeletes(t *testing.T) {
	c, s, ch := newCache()
	if err := s.Replace([]any{ns("a", nil), ns("b", map[string]string{"x": "1"})}, "1"); err != nil {
		t.Fatal(err)
	}
	if got := ch.take(); len(got) != 0 {
		t.Fatalf("the first list told %v", got)
	}
	if err := s.Add(ns("c", nil)); err != nil {
		t.Fatal(err)
	}
	annotated := ns("a", nil)
	annotated.Annotations = map[string]string{"note": "labels unchanged"}
	if err := s.Update(annotated); err != nil {
		t.Fatal(err)
	}
	if got := ch.take(); len(got) != 0 {
		t.Fatalf("a new namespace and an unchanged one told %v", got)
	}
	if err := s.Update(ns("b", map[string]string{"x": "2"})); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ns("c", nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ns("never-seen", nil)); err != nil {
		t.Fatal(err)
	}
	if got := ch.take(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("told %v; want [b c]", got)
	}
	// A relist after a lost watch: a gone, b relabelled back, d new.
	if err := s.Replace([]any{ns("b", map[string]string{"x": "1"}), ns("d", nil)}, "2"); err != nil {
		t.Fatal(err)
	}
	if got := ch.take(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("the relist told %v; want [a b]", got)
	}
	if _, ok := c.Labels("a"); ok {
		t.Fatal("a namespace gone from the relist is still held")
	}
	if got, _ := c.Labels("b"); got["x"] != "1" {
		t.Fatalf("Labels(b) = %v after the relist", got)
	}
}

func TestUnexpectedObjectsAreErrors(t *testing.T) {
	_, s, _ := newCache()
	for name, f := range map[string]func() error{
		"add":     func() error { return s.Add("not an object") },
		"delete":  func() error { return s.Delete(42) },
		"replace": func() error { return s.Replace([]any{ns("a", nil), 42}, "1") },
	} {
		if err := f(); err == nil {
			t.Errorf("%s of an unexpected object: no error", name)
		}
	}
}

// TestReflected runs the cache on a reflector, from a source of
// namespaces as a list and a watch serve them.
func TestReflected(t *testing.T) {
	src := fcache.NewFakeControllerSource()
	src.Add(ns("a", map[string]string{"team": "a"}))
	c := New(src)
	ch := &changes{}
	c.OnChange(ch.add)
	if c.WaitForSync(canceled()) {
		t.Fatal("synced before it started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Start(ctx) }()
	wait, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if !c.WaitForSync(wait) {
		t.Fatal("not synced")
	}
	if got, _ := c.Labels("a"); got["team"] != "a" {
		t.Fatalf("Labels(a) = %v", got)
	}
	src.Add(ns("b", nil))
	src.Modify(ns("a", map[string]string{"team": "b"}))
	eventually(t, func() bool { l, _ := c.Labels("a"); return l["team"] == "b" && c.count() == 2 })
	eventually(t, func() bool { return slices.Equal(ch.take(), []string{"a"}) })
	src.Delete(ns("b", nil))
	eventually(t, func() bool { return c.count() == 1 })
	if got := ch.take(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("told %v; want [b]", got)
	}
	cancel()
	<-done
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// count returns how many namespaces the cache holds.
func (c *Cache) count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.namespaces)
}

func eventually(t *testing.T, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not met in 30 s")
}

func BenchmarkLabels(b *testing.B) {
	c, s, _ := newCache()
	_ = s.Replace([]any{ns("team-a", map[string]string{"team": "a", "env": "prod"})}, "1")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.Labels("team-a")
	}
}

// What the reflector holds of a namespace before the cache takes it: its
// name, labels and resource version, not its managedFields or annotations.
// A bookmark is passed on whole.
func TestWatchPassesOnSlimNamespaces(t *testing.T) {
	heavy := func() *metav1.PartialObjectMetadata {
		m := ns("team-a", map[string]string{"team": "a"})
		m.ResourceVersion = "42"
		m.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"a":"long document"}`}
		m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
		m.Finalizers = []string{"kubernetes"}
		return m
	}
	src := watch.NewFake()
	w := slimWatch(src)
	defer w.Stop()
	go func() {
		src.Add(heavy())
		bookmark := heavy()
		bookmark.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
		src.Action(watch.Bookmark, bookmark)
	}()
	e := <-w.ResultChan()
	got := e.Object.(*metav1.PartialObjectMetadata)
	want := metav1.ObjectMeta{Name: "team-a", ResourceVersion: "42", Labels: heavy().Labels}
	if e.Type != watch.Added || !reflect.DeepEqual(got.ObjectMeta, want) || got.Kind != "Namespace" {
		t.Fatalf("passed on %s %#v; want Added %#v", e.Type, got, want)
	}
	e = <-w.ResultChan()
	if got := e.Object.(*metav1.PartialObjectMetadata); e.Type != watch.Bookmark || got.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("the bookmark lost its annotation: %s %#v", e.Type, got)
	}
}
