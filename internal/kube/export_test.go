package kube

// ProvideVolumes is provideVolumes for the external tests (cli_test.go).
var ProvideVolumes = provideVolumes
