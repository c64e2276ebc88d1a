//! Label and field selectors, parsed and matched as k8s.io/apimachinery does.
