// Writes testdata/vectors.json: protobuf and JSON of built-in objects exactly as upstream's
// codecs (k8s.io/apimachinery v0.35.4, the codec factory client-go and kube-apiserver use)
// write them. Not part of any build; to regenerate, in an empty directory:
//
//	cp .../testdata/gen_vectors.go main.go
//	go mod init vectors && go get k8s.io/api@v0.35.4 k8s.io/apimachinery@v0.35.4 \
//	    k8s.io/apiextensions-apiserver@v0.35.4 k8s.io/kube-aggregator@v0.35.4 && go mod tidy
//	go run . gen > .../testdata/vectors.json
//
// `go run . decode < hexlines` decodes protobuf bodies (one hex string a line) and prints the
// JSON of each and whether Go re-encodes it to the same bytes: the check that Rudder's output
// is what Go reads.
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

var scheme = runtime.NewScheme()
var codecs serializer.CodecFactory

func init() {
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, apiextv1.AddToScheme, apiregv1.AddToScheme,
		eventsv1.AddToScheme, rbacv1.AddToScheme, authenticationv1.AddToScheme, autoscalingv2.AddToScheme,
		batchv1.AddToScheme, certificatesv1.AddToScheme, coordinationv1.AddToScheme, networkingv1.AddToScheme,
		policyv1.AddToScheme, admissionregistrationv1.AddToScheme, resourcev1.AddToScheme, metav1.AddMetaToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	codecs = serializer.NewCodecFactory(scheme)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

type vector struct {
	Name     string          `json:"name"`
	Input    json.RawMessage `json:"input"`
	Protobuf string          `json:"protobuf"`
	Output   json.RawMessage `json:"output"`
	// OutputProtobuf is the protobuf of output decoded by the JSON serializer (JSON loses the
	// difference between nil and empty of omitempty fields).
	OutputProtobuf string `json:"output_protobuf,omitempty"`
}

var pb = protobuf.NewSerializer(scheme, scheme)

func info(mediaType string) runtime.SerializerInfo {
	i, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		panic(mediaType)
	}
	return i
}

func decodeJSON(in string) (runtime.Object, schema.GroupVersion) {
	obj, gvk, err := codecs.UniversalDeserializer().Decode([]byte(in), nil, nil)
	must(err)
	return obj, gvk.GroupVersion()
}

func encodeProto(obj runtime.Object, gv schema.GroupVersion) []byte {
	var buf bytes.Buffer
	must(codecs.EncoderForVersion(pb, gv).Encode(obj, &buf))
	return buf.Bytes()
}

func toJSON(obj runtime.Object, gv schema.GroupVersion) []byte {
	var buf bytes.Buffer
	must(codecs.EncoderForVersion(info("application/json").Serializer, gv).Encode(obj, &buf))
	return bytes.TrimSpace(buf.Bytes())
}

func object(name, in string) vector {
	obj, gv := decodeJSON(in)
	data := encodeProto(obj, gv)
	back, _, err := pb.Decode(data, nil, nil)
	must(err)
	out := toJSON(back, gv)
	again, _ := decodeJSON(string(out))
	return vector{Name: name, Input: json.RawMessage(in), Protobuf: hex.EncodeToString(data), Output: out,
		OutputProtobuf: hex.EncodeToString(encodeProto(again, gv))}
}

func watch(name, eventType, in string) vector {
	obj, gv := decodeJSON(in)
	embedded := encodeProto(obj, gv)
	ev := &metav1.WatchEvent{Type: eventType, Object: runtime.RawExtension{Raw: embedded}}
	ss := info("application/vnd.kubernetes.protobuf").StreamSerializer
	var buf bytes.Buffer
	fw := ss.Framer.NewFrameWriter(&buf)
	must(codecs.EncoderForVersion(ss.Serializer, gv).Encode(ev, fw))
	return vector{Name: name, Input: json.RawMessage(in), Protobuf: hex.EncodeToString(buf.Bytes()), Output: json.RawMessage(`"` + eventType + `"`)}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "decode" {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<24), 1<<24)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			data, err := hex.DecodeString(line)
			must(err)
			obj, gvk, err := pb.Decode(data, nil, nil)
			if err != nil {
				fmt.Println("ERROR", err)
				continue
			}
			again := encodeProto(obj, gvk.GroupVersion())
			fmt.Printf("%s identical-reencode=%v\n", toJSON(obj, gvk.GroupVersion()), bytes.Equal(again, data))
		}
		return
	}
	var out []vector
	for _, f := range fixtures {
		if f.watch != "" {
			out = append(out, watch(f.name, f.watch, f.json))
		} else {
			out = append(out, object(f.name, f.json))
		}
	}
	fmt.Println("[")
	for i, v := range out {
		line, err := json.Marshal(v)
		must(err)
		sep := ","
		if i == len(out)-1 {
			sep = ""
		}
		fmt.Printf("%s%s\n", line, sep)
	}
	fmt.Println("]")
}

type fixture struct{ name, watch, json string }

var fixtures = []fixture{
	{name: "configmap", json: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","namespace":"default","uid":"6b3c1a9e-1b4f-4f6e-9a57-2d7f0c1d5e11","resourceVersion":"12345","generation":2,"creationTimestamp":"2024-05-06T07:08:09Z","labels":{"app":"web","tier":""},"annotations":{"note":"hello"},"managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1","time":"2024-05-06T07:08:09Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:a":{}}}}]},"data":{"a":"1","b":"","c":"multi\nline"},"binaryData":{"bin":"AAECAw=="},"immutable":false}`},
	{name: "configmap-minimal", json: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`},
	{name: "pod", json: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0","namespace":"prod","generateName":"web-","creationTimestamp":"2024-01-02T03:04:05Z","deletionTimestamp":"2024-01-02T04:00:00Z","deletionGracePeriodSeconds":30,"ownerReferences":[{"apiVersion":"apps/v1","kind":"StatefulSet","name":"web","uid":"0b8f0a4e-0000-4000-8000-000000000001","controller":true,"blockOwnerDeletion":true}],"finalizers":["a/b"]},
	 "spec":{"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","nodeName":"node-1","hostNetwork":false,"priority":0,
	  "securityContext":{"runAsUser":0,"runAsNonRoot":false,"supplementalGroups":[1000,2000],"fsGroup":3000,"sysctls":[{"name":"net.ipv4.ip_forward","value":"1"}]},
	  "initContainers":[{"name":"init","image":"busybox","command":["sh","-c","true"]}],
	  "containers":[{"name":"app","image":"nginx:1.25","args":["--port","8080"],"workingDir":"/app",
	    "ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"containerPort":9090,"hostPort":0}],
	    "env":[{"name":"A","value":"1"},{"name":"EMPTY","value":""},{"name":"FROM_CM","valueFrom":{"configMapKeyRef":{"name":"cm1","key":"a","optional":true}}},{"name":"FROM_FIELD","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}},{"name":"FROM_RES","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"1m"}}}],
	    "envFrom":[{"prefix":"P_","secretRef":{"name":"s1"}}],
	    "resources":{"limits":{"cpu":"500m","memory":"128Mi","nvidia.com/gpu":"1"},"requests":{"cpu":"250m","memory":"64Mi","ephemeral-storage":"1Gi"}},
	    "livenessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP","httpHeaders":[{"name":"X","value":"y"}]},"initialDelaySeconds":5,"periodSeconds":10,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":3},
	    "readinessProbe":{"tcpSocket":{"port":8080},"periodSeconds":5},
	    "startupProbe":{"exec":{"command":["cat","/ready"]},"terminationGracePeriodSeconds":10},
	    "lifecycle":{"preStop":{"sleep":{"seconds":5}}},
	    "volumeMounts":[{"name":"data","mountPath":"/data","readOnly":true},{"name":"cache","mountPath":"/cache","subPath":"x"}],
	    "securityContext":{"privileged":false,"allowPrivilegeEscalation":false,"capabilities":{"add":["NET_ADMIN"],"drop":["ALL"]},"readOnlyRootFilesystem":true},
	    "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],
	  "volumes":[{"name":"data","configMap":{"name":"cm1","defaultMode":420,"items":[{"key":"a","path":"a.txt","mode":256}]}},{"name":"cache","emptyDir":{"medium":"Memory","sizeLimit":"1Gi"}},{"name":"sec","secret":{"secretName":"s1","optional":false}},{"name":"proj","projected":{"sources":[{"serviceAccountToken":{"audience":"api","expirationSeconds":3600,"path":"token"}}]}}],
	  "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"k","operator":"Equal","value":"v","effect":"NoSchedule"}],
	  "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}]}},"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"kubernetes.io/hostname"}}]}},
	  "nodeSelector":{"kubernetes.io/os":"linux"},"hostAliases":[{"ip":"10.0.0.1","hostnames":["a","b"]}],"overhead":{"cpu":"10m"}},
	 "status":{"phase":"Running","qosClass":"Burstable","hostIP":"10.0.0.2","podIP":"10.244.0.5","podIPs":[{"ip":"10.244.0.5"}],"startTime":"2024-01-02T03:04:06Z",
	  "conditions":[{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-01-02T03:04:10Z"}],
	  "containerStatuses":[{"name":"app","ready":true,"restartCount":0,"image":"nginx:1.25","imageID":"docker.io/nginx@sha256:abc","containerID":"containerd://123","started":true,"state":{"running":{"startedAt":"2024-01-02T03:04:08Z"}},"lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","startedAt":"2024-01-02T03:00:00Z","finishedAt":"2024-01-02T03:04:07Z"}},"allocatedResources":{"cpu":"250m"}}]}}`},
	{name: "secret", json: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s1","namespace":"default"},"type":"Opaque","data":{"password":"cGFzc3dvcmQ=","empty":"","binary":"/wD+AQ=="}}`},
	{name: "deployment", json: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","generation":3,"annotations":{"deployment.kubernetes.io/revision":"2"}},
	 "spec":{"replicas":3,"revisionHistoryLimit":10,"progressDeadlineSeconds":600,"minReadySeconds":0,"paused":false,
	  "selector":{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"env","operator":"NotIn","values":["dev"]},{"key":"x","operator":"Exists"}]},
	  "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}},
	  "template":{"metadata":{"labels":{"app":"web"},"creationTimestamp":null},"spec":{"containers":[{"name":"web","image":"nginx","resources":{}}]}}},
	 "status":{"observedGeneration":3,"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3,"conditions":[{"type":"Available","status":"True","lastUpdateTime":"2024-03-04T05:06:07Z","lastTransitionTime":"2024-03-04T05:06:07Z","reason":"MinimumReplicasAvailable","message":"ok"}]}}`},
	{name: "crd", json: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"},
	 "spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList","shortNames":["wd"],"categories":["all"]},
	  "conversion":{"strategy":"None"},
	  "versions":[{"name":"v1","served":true,"storage":true,"subresources":{"status":{},"scale":{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}},
	   "additionalPrinterColumns":[{"name":"Size","type":"integer","jsonPath":".spec.size","priority":0}],
	   "selectableFields":[{"jsonPath":".spec.color"}],
	   "schema":{"openAPIV3Schema":{"type":"object","description":"A widget","required":["spec"],"properties":{
	     "spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true,"properties":{
	       "size":{"type":"integer","format":"int32","minimum":1,"maximum":10.5,"default":3,"exclusiveMaximum":false},
	       "color":{"type":"string","enum":["red","green",null],"pattern":"^[a-z]+$","maxLength":20,"nullable":true},
	       "port":{"x-kubernetes-int-or-string":true,"anyOf":[{"type":"integer"},{"type":"string"}]},
	       "tags":{"type":"array","items":{"type":"string"},"x-kubernetes-list-type":"set","maxItems":5},
	       "tuple":{"type":"array","items":[{"type":"string"},{"type":"integer"}]},
	       "labels":{"type":"object","additionalProperties":{"type":"string"},"x-kubernetes-map-type":"granular"},
	       "open":{"type":"object","additionalProperties":true},
	       "closed":{"type":"object","additionalProperties":false},
	       "deps":{"type":"object","dependencies":{"a":["b","c"],"d":{"required":["e"]}}},
	       "embedded":{"type":"object","x-kubernetes-embedded-resource":true,"x-kubernetes-preserve-unknown-fields":true},
	       "conf":{"type":"object","default":{"a":[1,2.5,"x",{"b":null}],"c":true},"example":{"k":"v"},
	         "x-kubernetes-validations":[{"rule":"self.a.size() > 0","message":"need a","reason":"FieldValueInvalid","fieldPath":".a","optionalOldSelf":true}]}}}}}}}]},
	 "status":{"acceptedNames":{"plural":"widgets","kind":"Widget"},"storedVersions":["v1"],"conditions":[{"type":"Established","status":"True","lastTransitionTime":"2024-01-01T00:00:00Z","reason":"InitialNamesAccepted","message":"the initial names have been accepted"}]}}`},
	{name: "events-event", json: `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"web.17a","namespace":"default"},"eventTime":"2024-01-02T03:04:05.123456Z","series":{"count":3,"lastObservedTime":"2024-01-02T03:05:00.000001Z"},"reportingController":"kubelet","reportingInstance":"node-1","action":"Pulling","reason":"Pulling","regarding":{"kind":"Pod","namespace":"default","name":"web","uid":"u1","apiVersion":"v1","resourceVersion":"5","fieldPath":"spec.containers{web}"},"note":"Pulling image","type":"Normal","deprecatedFirstTimestamp":"2024-01-02T03:04:05Z","deprecatedCount":3}`},
	{name: "core-event", json: `{"apiVersion":"v1","kind":"Event","metadata":{"name":"e1","namespace":"default"},"involvedObject":{"kind":"Node","name":"n1","uid":"n1"},"reason":"Starting","message":"Starting kubelet.","source":{"component":"kubelet","host":"n1"},"firstTimestamp":"2024-01-02T03:04:05Z","lastTimestamp":"2024-01-02T03:04:05Z","count":1,"type":"Normal","eventTime":null,"reportingComponent":"","reportingInstance":""}`},
	{name: "status", json: `{"apiVersion":"v1","kind":"Status","metadata":{},"status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps","causes":[{"reason":"FieldValueInvalid","message":"bad","field":"spec.x"}],"retryAfterSeconds":1},"code":404}`},
	{name: "configmaplist", json: `{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"99","continue":"abc","remainingItemCount":5},"items":[{"metadata":{"name":"a","namespace":"n"},"data":{"k":"v"}},{"metadata":{"name":"b","namespace":"n"}}]}`},
	{name: "emptylist", json: `{"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]}`},
	{name: "apiservice", json: `{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{"name":"v1beta1.metrics.k8s.io"},"spec":{"service":{"namespace":"kube-system","name":"metrics-server","port":443},"group":"metrics.k8s.io","version":"v1beta1","insecureSkipTLSVerify":true,"caBundle":"AAEC","groupPriorityMinimum":100,"versionPriority":100},"status":{"conditions":[{"type":"Available","status":"True","lastTransitionTime":"2024-01-01T00:00:00Z"}]}}`},
	{name: "clusterrole", json: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"admin"},"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"rbac.example.com/aggregate-to-admin":"true"}}]}}`},
	{name: "role", json: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"r","namespace":"n"},"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]},{"nonResourceURLs":["/healthz"],"verbs":["get"]}]}`},
	{name: "partialobjectmetadatalist", json: `{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"3"},"items":[{"metadata":{"name":"a","namespace":"n","labels":{"x":"y"}}}]}`},
	{name: "deleteoptions", json: `{"apiVersion":"v1","kind":"DeleteOptions","gracePeriodSeconds":0,"preconditions":{"uid":"u1","resourceVersion":"5"},"propagationPolicy":"Foreground","dryRun":["All"]}`},
	{name: "tokenreview", json: `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","metadata":{"creationTimestamp":null},"spec":{"token":"abc","audiences":["api"]},"status":{"authenticated":true,"user":{"username":"alice","uid":"1","groups":["dev"],"extra":{"scopes":["a","b"],"empty":[]}},"audiences":["api"]}}`},
	{name: "controllerrevision", json: `{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"web-1","namespace":"default"},"data":{"spec":{"template":{"spec":{"containers":[{"image":"b","name":"a"}]}}}},"revision":1}`},
	{name: "hpa", json: `{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"h","namespace":"n"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"minReplicas":1,"maxReplicas":10,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":80}}},{"type":"Pods","pods":{"metric":{"name":"qps"},"target":{"type":"AverageValue","averageValue":"100m"}}}],"behavior":{"scaleDown":{"stabilizationWindowSeconds":300,"selectPolicy":"Max","policies":[{"type":"Percent","value":100,"periodSeconds":15}],"tolerance":"50m"}}},"status":{"currentReplicas":2,"desiredReplicas":2,"lastScaleTime":"2024-01-01T00:00:00Z","currentMetrics":null}}`},
	{name: "node", json: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"],"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule","timeAdded":"2024-01-01T00:00:00Z"}],"unschedulable":true},"status":{"capacity":{"cpu":"4","memory":"16Gi","pods":"110"},"allocatable":{"cpu":"3900m","memory":"15Gi","pods":"110"},"addresses":[{"type":"InternalIP","address":"10.0.0.2"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}},"nodeInfo":{"machineID":"m","systemUUID":"s","bootID":"b","kernelVersion":"6.1","osImage":"Debian","containerRuntimeVersion":"containerd://1.7","kubeletVersion":"v1.35.4","kubeProxyVersion":"","operatingSystem":"linux","architecture":"amd64"},"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"2024-01-01T00:00:00Z","lastTransitionTime":"2024-01-01T00:00:00Z","reason":"KubeletReady","message":"ready"}],"images":[{"names":["nginx"],"sizeBytes":123456789}]}}`},
	{name: "csr", json: `{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"c"},"spec":{"request":"LS0tLS1CRUdJTg==","signerName":"kubernetes.io/kube-apiserver-client","expirationSeconds":3600,"usages":["client auth"],"username":"u","groups":["system:authenticated"],"extra":{"k":["v"]}},"status":{"certificate":"","conditions":[{"type":"Approved","status":"True","reason":"AutoApproved","lastUpdateTime":"2024-01-01T00:00:00Z"}]}}`},
	{name: "apiresourcelist", json: `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"apps/v1","resources":[{"name":"deployments","singularName":"deployment","namespaced":true,"kind":"Deployment","verbs":["create","get"],"shortNames":["deploy"],"categories":["all"],"storageVersionHash":"8aSe+NMegvE="},{"name":"deployments/status","singularName":"","namespaced":true,"kind":"Deployment","verbs":[]}]}`},
	{name: "service", json: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc","namespace":"default"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"http","nodePort":30080},{"name":"metrics","port":9090,"targetPort":9090,"appProtocol":"http"}],"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},"externalTrafficPolicy":"Cluster","internalTrafficPolicy":"Cluster","allocateLoadBalancerNodePorts":true},"status":{"loadBalancer":{}}}`},
	{name: "job", json: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","namespace":"n"},"spec":{"parallelism":2,"completions":4,"backoffLimit":6,"completionMode":"Indexed","suspend":false,"ttlSecondsAfterFinished":100,"podFailurePolicy":{"rules":[{"action":"FailJob","onExitCodes":{"operator":"In","values":[1,2,42]}}]},"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}},"status":{"startTime":"2024-01-01T00:00:00Z","completionTime":"2024-01-01T00:01:00Z","succeeded":4,"completedIndexes":"0-3","ready":0,"terminating":0,"uncountedTerminatedPods":{}}}`},
	{name: "lease", json: `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l","namespace":"kube-node-lease"},"spec":{"holderIdentity":"n1","leaseDurationSeconds":40,"renewTime":"2024-01-02T03:04:05.678901Z","acquireTime":"2024-01-02T03:00:00.000000Z","leaseTransitions":0}}`},
	{name: "ingress", json: `{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i","namespace":"n"},"spec":{"ingressClassName":"nginx","rules":[{"host":"a.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"svc","port":{"number":80}}}}]}}],"tls":[{"hosts":["a.example.com"],"secretName":"tls"}]}}`},
	{name: "webhook", json: `{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"w"},"webhooks":[{"name":"w.example.com","clientConfig":{"service":{"namespace":"n","name":"s","path":"/v","port":443},"caBundle":"Y2E="},"rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"],"scope":"*"}],"failurePolicy":"Fail","sideEffects":"None","admissionReviewVersions":["v1"],"timeoutSeconds":5,"matchConditions":[{"name":"m","expression":"true"}]}]}`},
	{name: "eviction", json: `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p","namespace":"n"},"deleteOptions":{"gracePeriodSeconds":10}}`},
	{name: "pdb", json: `{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"p","namespace":"n"},"spec":{"minAvailable":"50%","selector":{"matchLabels":{"a":"b"}},"unhealthyPodEvictionPolicy":"AlwaysAllow"},"status":{"disruptionsAllowed":1,"currentHealthy":2,"desiredHealthy":1,"expectedPods":2,"observedGeneration":1,"disruptedPods":{"p1":"2024-01-01T00:00:00Z"}}}`},
	{name: "resourceclaim", json: `{"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim","metadata":{"name":"rc","namespace":"n"},"spec":{"devices":{"requests":[{"name":"gpu","exactly":{"deviceClassName":"gpu.example.com","allocationMode":"ExactCount","count":1,"capacity":{"requests":{"memory":"1Gi"}}}}]}}}`},
	// Sparse objects as Rudder holds them (absent rather than zero fields).
	{name: "pod-sparse", json: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n","creationTimestamp":"2024-01-02T03:04:05Z"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"1500m"},"requests":{"cpu":"500m"}},"livenessProbe":{"httpGet":{"port":"http"}}}],"securityContext":{"runAsUser":0},"volumes":[{"name":"v","emptyDir":{"sizeLimit":"64Mi"}}]}}`},
	{name: "deployment-sparse", json: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":0,"selector":{"matchLabels":{"a":"b"}},"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":0}},"template":{"spec":{"containers":[{"name":"c"}]}}}}`},
	{name: "events-event-sparse", json: `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e"},"eventTime":"2024-01-02T03:04:05.123456Z","series":{"count":2,"lastObservedTime":"2024-01-02T03:04:06.000001Z"}}`},
	{name: "crd-sparse", json: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"ws.example.com"},"spec":{"group":"example.com","names":{"plural":"ws","kind":"W"},"scope":"Namespaced","versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"a":{"type":"integer","default":5,"maximum":10.5},"d":{"items":[{"type":"string"}]},"e":{"additionalProperties":false},"g":{"dependencies":{"x":["y"]}},"h":{"$ref":"#/x"}}}}}]}}`},
	{name: "tokenreview-sparse", json: `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","metadata":{},"status":{"user":{"username":"u","extra":{"a":["1"],"b":[]}}}}`},
	{name: "status-sparse", json: `{"apiVersion":"v1","kind":"Status","status":"Failure","code":500}`},
	{name: "watch-configmap", watch: "ADDED", json: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","namespace":"default","resourceVersion":"7"},"data":{"a":"b"}}`},
	{name: "watch-deployment", watch: "MODIFIED", json: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`},
	{name: "watch-bookmark", watch: "BOOKMARK", json: `{"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}`},
}
