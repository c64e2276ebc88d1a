// Command clientgo drives a Kubernetes API server with the real client-go, the way
// controllers and operators do: typed clients over protobuf, watches, optimistic
// concurrency with retries, server-side apply and shared informers.
//
// It prints one line per step, "PASS <step>" or "FAIL <step>: <reason>", and exits
// non-zero if any step failed. Rudder's e2e test (e2e/clientgo.rs) runs it against
// `rudder server`; it works against any cluster:
//
//	go run . -kubeconfig ~/.kube/config
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// label marks every object this program creates, so cleanup can check nothing is left.
const label = "e2e.rudder.dev/client"

// stepTimeout bounds each step; a hung watch or informer fails its step, not the run.
const stepTimeout = 30 * time.Second

type run struct {
	cs     *kubernetes.Clientset
	ns     string
	failed int
}

// step runs fn and prints its outcome on one line.
func (r *run) step(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		r.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("PASS %s\n", name)
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "path to the kubeconfig (default $KUBECONFIG)")
	flag.Parse()
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "clientgo: pass -kubeconfig or set KUBECONFIG")
		os.Exit(2)
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo: loading %s: %v\n", *kubeconfig, err)
		os.Exit(2)
	}
	config.ContentType = "application/vnd.kubernetes.protobuf"
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.UserAgent = "rudder-e2e-clientgo"
	config.QPS, config.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo: %v\n", err)
		os.Exit(2)
	}

	r := &run{cs: cs}
	r.step("namespace", r.createNamespace)
	if r.ns == "" {
		fmt.Println("FAILED: no namespace to work in")
		os.Exit(1)
	}
	r.step("configmaps", r.configMaps)
	r.step("deployment", r.deployment)
	r.step("watch", r.watchConfigMaps)
	r.step("conflict-retry", r.conflictRetry)
	r.applySteps()
	r.step("informers", r.informers)
	r.step("cleanup", r.cleanup)

	if r.failed > 0 {
		fmt.Printf("FAILED: %d step(s) failed\n", r.failed)
		os.Exit(1)
	}
	fmt.Println("OK: all steps passed")
}

func (r *run) labels() map[string]string { return map[string]string{label: "clientgo"} }

func (r *run) configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns, Labels: r.labels()},
		Data:       data,
	}
}

func (r *run) createNamespace(ctx context.Context) error {
	ns, err := r.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "clientgo-", Labels: r.labels()},
	}, metav1.CreateOptions{})
	if err != nil {
		return describe("create namespace", err)
	}
	if ns.Name == "" || ns.Status.Phase != corev1.NamespaceActive {
		return fmt.Errorf("created namespace %q has phase %q, want Active", ns.Name, ns.Status.Phase)
	}
	r.ns = ns.Name
	return nil
}

// configMaps creates, gets and lists ConfigMaps.
func (r *run) configMaps(ctx context.Context) error {
	client := r.cs.CoreV1().ConfigMaps(r.ns)
	created, err := client.Create(ctx, r.configMap("settings", map[string]string{"mode": "fast"}), metav1.CreateOptions{})
	if err != nil {
		return describe("create", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
		return fmt.Errorf("created object lacks uid, resourceVersion or creationTimestamp: %+v", created.ObjectMeta)
	}
	if _, err := client.Create(ctx, r.configMap("settings", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating it again: want AlreadyExists, got %v", err)
	}
	got, err := client.Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		return describe("get", err)
	}
	if got.Data["mode"] != "fast" || got.UID != created.UID || got.ResourceVersion != created.ResourceVersion {
		return fmt.Errorf("get returned %+v, want what was created", got)
	}
	if _, err := client.Create(ctx, r.configMap("other", map[string]string{"mode": "slow"}), metav1.CreateOptions{}); err != nil {
		return describe("create second", err)
	}
	list, err := client.List(ctx, metav1.ListOptions{LabelSelector: label + "=clientgo"})
	if err != nil {
		return describe("list", err)
	}
	if names := itemNames(list.Items); len(names) != 2 || !names["settings"] || !names["other"] {
		return fmt.Errorf("list returned %v, want settings and other", names)
	}
	if list.ResourceVersion == "" {
		return errors.New("list has no resourceVersion")
	}
	page, err := client.List(ctx, metav1.ListOptions{LabelSelector: label + "=clientgo", Limit: 1})
	if err != nil {
		return describe("list with limit", err)
	}
	if len(page.Items) != 1 || page.Continue == "" {
		return fmt.Errorf("list with limit 1 returned %d items and continue %q", len(page.Items), page.Continue)
	}
	if _, err := client.Get(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return fmt.Errorf("get of a missing object: want NotFound, got %v", err)
	}
	return nil
}

func itemNames(items []corev1.ConfigMap) map[string]bool {
	names := map[string]bool{}
	for _, item := range items {
		names[item.Name] = true
	}
	return names
}

// deployment creates, gets and lists a Deployment and checks the server's defaults.
func (r *run) deployment(ctx context.Context) error {
	client := r.cs.AppsV1().Deployments(r.ns)
	replicas := int32(2)
	selector := map[string]string{"app": "web"}
	created, err := client.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: r.labels()},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: selector},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return describe("create", err)
	}
	if created.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || created.Spec.RevisionHistoryLimit == nil {
		return fmt.Errorf("created deployment lacks defaults: strategy %q, revisionHistoryLimit %v",
			created.Spec.Strategy.Type, created.Spec.RevisionHistoryLimit)
	}
	got, err := client.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		return describe("get", err)
	}
	if got.UID != created.UID || got.Spec.Replicas == nil || *got.Spec.Replicas != 2 ||
		got.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" {
		return fmt.Errorf("get returned %+v, want what was created", got.Spec)
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return describe("list", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "web" {
		return fmt.Errorf("list returned %d deployments, want just web", len(list.Items))
	}
	return nil
}

// watchConfigMaps watches ConfigMaps from a list's resourceVersion and expects ADDED,
// MODIFIED and DELETED for one it creates, updates and deletes.
func (r *run) watchConfigMaps(ctx context.Context) error {
	client := r.cs.CoreV1().ConfigMaps(r.ns)
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return describe("list", err)
	}
	w, err := client.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return describe("watch", err)
	}
	defer w.Stop()

	cm, err := client.Create(ctx, r.configMap("watched", map[string]string{"v": "1"}), metav1.CreateOptions{})
	if err != nil {
		return describe("create", err)
	}
	cm.Data["v"] = "2"
	if _, err := client.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return describe("update", err)
	}
	if err := client.Delete(ctx, "watched", metav1.DeleteOptions{}); err != nil {
		return describe("delete", err)
	}

	want := []watch.EventType{watch.Added, watch.Modified, watch.Deleted}
	var seen []watch.EventType
	for len(seen) < len(want) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("saw events %v, want %v: %w", seen, want, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch closed after events %v, want %v", seen, want)
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("watch error event: %v", apierrors.FromObject(ev.Object))
			}
			obj, isCM := ev.Object.(*corev1.ConfigMap)
			if !isCM {
				return fmt.Errorf("%s event carries %T, want *v1.ConfigMap", ev.Type, ev.Object)
			}
			if obj.Name != "watched" {
				continue
			}
			seen = append(seen, ev.Type)
			if ev.Type == watch.Modified && obj.Data["v"] != "2" {
				return fmt.Errorf("MODIFIED event has data %v, want v=2", obj.Data)
			}
		}
	}
	for i := range want {
		if seen[i] != want[i] {
			return fmt.Errorf("saw events %v, want %v", seen, want)
		}
	}
	return nil
}

// conflictRetry updates from a stale copy, expects a Conflict, then lets
// retry.RetryOnConflict recover from a deliberately stale first attempt.
func (r *run) conflictRetry(ctx context.Context) error {
	client := r.cs.CoreV1().ConfigMaps(r.ns)
	stale, err := client.Create(ctx, r.configMap("counter", map[string]string{"n": "0"}), metav1.CreateOptions{})
	if err != nil {
		return describe("create", err)
	}
	fresh := stale.DeepCopy()
	fresh.Data["n"] = "1"
	if _, err := client.Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return describe("update", err)
	}
	conflicting := stale.DeepCopy()
	conflicting.Data["n"] = "stale"
	_, err = client.Update(ctx, conflicting, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		return fmt.Errorf("update with a stale resourceVersion: want Conflict, got %v", err)
	}

	attempts := 0
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempts++
		current := stale.DeepCopy() // the first attempt deliberately uses the stale copy
		if attempts > 1 {
			var err error
			if current, err = client.Get(ctx, "counter", metav1.GetOptions{}); err != nil {
				return err
			}
		}
		current.Data["n"] = "2"
		_, err := client.Update(ctx, current, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return describe("RetryOnConflict", err)
	}
	if attempts != 2 {
		return fmt.Errorf("RetryOnConflict made %d attempts, want 2 (one conflict, one success)", attempts)
	}
	got, err := client.Get(ctx, "counter", metav1.GetOptions{})
	if err != nil {
		return describe("get", err)
	}
	if got.Data["n"] != "2" {
		return fmt.Errorf("after the retry n=%q, want 2", got.Data["n"])
	}
	return nil
}

// applySteps does server-side apply: a first apply by one field manager, a conflicting
// apply by a second manager that must fail, then a forced apply that takes ownership.
func (r *run) applySteps() {
	client := r.cs.CoreV1().ConfigMaps(r.ns)
	desired := func(value string) *corev1ac.ConfigMapApplyConfiguration {
		return corev1ac.ConfigMap("applied", r.ns).WithLabels(r.labels()).WithData(map[string]string{"owner": value})
	}
	r.step("apply", func(ctx context.Context) error {
		cm, err := client.Apply(ctx, desired("alice"), metav1.ApplyOptions{FieldManager: "alice"})
		if err != nil {
			return describe("apply", err)
		}
		if cm.Data["owner"] != "alice" {
			return fmt.Errorf("applied object has data %v, want owner=alice", cm.Data)
		}
		if m := applyManagers(cm); len(m) != 1 || m[0] != "alice" {
			return fmt.Errorf("managedFields Apply managers are %v, want [alice]", m)
		}
		// Applying the same configuration again is a no-op.
		again, err := client.Apply(ctx, desired("alice"), metav1.ApplyOptions{FieldManager: "alice"})
		if err != nil {
			return describe("re-apply", err)
		}
		if again.ResourceVersion != cm.ResourceVersion {
			return fmt.Errorf("re-applying an unchanged configuration changed resourceVersion %s to %s",
				cm.ResourceVersion, again.ResourceVersion)
		}
		return nil
	})
	r.step("apply-conflict", func(ctx context.Context) error {
		_, err := client.Apply(ctx, desired("bob"), metav1.ApplyOptions{FieldManager: "bob"})
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("apply by a second manager: want Conflict, got %v", err)
		}
		return nil
	})
	r.step("apply-force", func(ctx context.Context) error {
		cm, err := client.Apply(ctx, desired("bob"), metav1.ApplyOptions{FieldManager: "bob", Force: true})
		if err != nil {
			return describe("forced apply", err)
		}
		if cm.Data["owner"] != "bob" {
			return fmt.Errorf("after the forced apply data is %v, want owner=bob", cm.Data)
		}
		// alice keeps the labels, which bob applies too, but no longer owns data.owner.
		owners := fieldOwners(cm, "f:owner")
		if len(owners) != 1 || owners[0] != "bob" {
			return fmt.Errorf("after the forced apply data.owner is managed by %v, want [bob]", owners)
		}
		return nil
	})
}

// fieldOwners lists the managers whose managedFields entry mentions field (e.g. "f:owner").
func fieldOwners(cm *corev1.ConfigMap, field string) []string {
	var managers []string
	for _, entry := range cm.ManagedFields {
		if entry.FieldsV1 != nil && strings.Contains(string(entry.FieldsV1.Raw), `"`+field+`"`) {
			managers = append(managers, entry.Manager)
		}
	}
	return managers
}

// applyManagers lists the managers that own fields through Apply.
func applyManagers(cm *corev1.ConfigMap) []string {
	var managers []string
	for _, entry := range cm.ManagedFields {
		if entry.Operation == metav1.ManagedFieldsOperationApply {
			managers = append(managers, entry.Manager)
		}
	}
	return managers
}

// informers runs a SharedInformerFactory for ConfigMaps, Deployments and Pods, waits for
// the caches to sync, then expects update events for changes made after the sync.
func (r *run) informers(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(r.cs, 0, informers.WithNamespace(r.ns))
	cmUpdated := make(chan struct{}, 1)
	deployUpdated := make(chan struct{}, 1)
	cmInformer := factory.Core().V1().ConfigMaps().Informer()
	deployInformer := factory.Apps().V1().Deployments().Informer()
	factory.Core().V1().Pods().Informer()
	notify := func(ch chan struct{}, match func(obj any) bool) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, obj any) {
			if match(obj) {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}}
	}
	if _, err := cmInformer.AddEventHandler(notify(cmUpdated, func(obj any) bool {
		cm, ok := obj.(*corev1.ConfigMap)
		return ok && cm.Name == "settings" && cm.Data["mode"] == "after-sync"
	})); err != nil {
		return err
	}
	if _, err := deployInformer.AddEventHandler(notify(deployUpdated, func(obj any) bool {
		d, ok := obj.(*appsv1.Deployment)
		return ok && d.Name == "web" && d.Annotations["phase"] == "after-sync"
	})); err != nil {
		return err
	}

	stop := make(chan struct{})
	defer factory.Shutdown()
	defer close(stop)
	factory.Start(stop)
	for typ, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("informer for %v did not sync: %w", typ, ctx.Err())
		}
	}
	lister := factory.Core().V1().ConfigMaps().Lister().ConfigMaps(r.ns)
	if _, err := lister.Get("settings"); err != nil {
		return fmt.Errorf("synced ConfigMap cache lacks settings: %w", err)
	}
	if _, err := factory.Apps().V1().Deployments().Lister().Deployments(r.ns).Get("web"); err != nil {
		return fmt.Errorf("synced Deployment cache lacks web: %w", err)
	}

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := r.cs.CoreV1().ConfigMaps(r.ns).Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data["mode"] = "after-sync"
		_, err = r.cs.CoreV1().ConfigMaps(r.ns).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return describe("update ConfigMap", err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := r.cs.AppsV1().Deployments(r.ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&d.ObjectMeta, "phase", "after-sync")
		_, err = r.cs.AppsV1().Deployments(r.ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return describe("update Deployment", err)
	}
	for what, ch := range map[string]chan struct{}{"ConfigMap": cmUpdated, "Deployment": deployUpdated} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("informer saw no update of the %s made after the sync: %w", what, ctx.Err())
		}
	}
	return nil
}

// cleanup deletes everything this program created and checks it is gone.
func (r *run) cleanup(ctx context.Context) error {
	var errs []error
	// An earlier step that failed may not have created its object: NotFound is fine.
	if err := r.cs.AppsV1().Deployments(r.ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, describe("delete deployment", err))
	}
	for _, name := range []string{"settings", "other", "counter", "applied"} {
		err := r.cs.CoreV1().ConfigMaps(r.ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, describe("delete configmap "+name, err))
		}
	}
	selector := metav1.ListOptions{LabelSelector: label + "=clientgo"}
	if cms, err := r.cs.CoreV1().ConfigMaps(r.ns).List(ctx, selector); err != nil {
		errs = append(errs, describe("list configmaps", err))
	} else if len(cms.Items) != 0 {
		errs = append(errs, fmt.Errorf("configmaps left after delete: %v", itemNames(cms.Items)))
	}
	if _, err := r.cs.AppsV1().Deployments(r.ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("get of the deleted deployment: want NotFound, got %v", err))
	}
	if err := r.cs.CoreV1().Namespaces().Delete(ctx, r.ns, metav1.DeleteOptions{}); err != nil {
		errs = append(errs, describe("delete namespace", err))
	} else if ns, err := r.cs.CoreV1().Namespaces().Get(ctx, r.ns, metav1.GetOptions{}); err == nil {
		// Namespace deletion is asynchronous: it is either gone or terminating.
		if ns.DeletionTimestamp == nil {
			errs = append(errs, fmt.Errorf("namespace %s still exists and is not being deleted", r.ns))
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, describe("get deleted namespace", err))
	}
	return errors.Join(errs...)
}

// describe wraps an API error with its reason and HTTP code.
func describe(what string, err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		return fmt.Errorf("%s: %w (reason %s, code %d)", what, err, s.Reason, s.Code)
	}
	return fmt.Errorf("%s: %w", what, err)
}
