package spec

import (
	"strings"
	"testing"
)

func TestAVolumeDeclaredIdenticallyInTwoFilesIsOneVolume(t *testing.T) {
	vol := "apiVersion: petrel.dev/v1alpha1\nkind: Volume\nmetadata: {name: models}\nspec: {size: 64Mi, accessModes: [ReadWriteMany]}\n"
	train, err := ParseDir("train.yaml", "/ex", []byte(vol))
	if err != nil {
		t.Fatal(err)
	}
	serve, err := ParseDir("serve.yaml", "/ex", []byte(vol))
	if err != nil {
		t.Fatal(err)
	}
	docs := append(train, serve...)
	if err := Validate(docs); err != nil {
		t.Fatalf("identical declarations refused: %v", err)
	}
	if got := MergeIdentical(docs); len(got) != 1 || got[0].File != "train.yaml" {
		t.Fatalf("MergeIdentical kept %d documents, want the first one only", len(got))
	}

	other, err := ParseDir("other.yaml", "/ex", []byte(strings.Replace(vol, "64Mi", "1Gi", 1)))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(train, other...)
	if got := MergeIdentical(docs); len(got) != 2 {
		t.Fatalf("different declarations merged")
	}
	err = Validate(docs)
	if err == nil || !strings.Contains(err.Error(), `Volume "models" is declared twice, differently`) || !strings.Contains(err.Error(), "other.yaml:") {
		t.Fatalf("different declarations: err = %v", err)
	}
}
