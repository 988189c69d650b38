import json

from tiny_models import tiny_joint_pipeline


def test_probes_of_a_tiny_model_on_the_validation_split(tmp_path, digits_npz, load_benchmark):
    benchmark_feature_probes = load_benchmark("benchmark_feature_probes")

    tiny_joint_pipeline().save_pretrained(tmp_path / "model")
    output = tmp_path / "probes.json"
    benchmark_feature_probes.main([
        "--models", f"tiny={tmp_path / 'model'}", "--npz_path", str(digits_npz),
        "--num_labeled", "30", "--all_labels", "--timesteps", "0", "5", "--clean_input", "--output", str(output),
    ])  # fmt: skip
    rows = json.loads(output.read_text())["rows"]
    pixels = {r["labels"]: r for r in rows if r["model"] == "pixels"}
    assert sorted(pixels) == ["30", "all"]
    # all 720 training labels beat 30 of them, for the pixels and for the features of the encoder
    assert pixels["all"]["balanced_accuracy"] > pixels["30"]["balanced_accuracy"] > 0.3
    encoder = {(r["labels"], r["timestep"], r["input"]): r for r in rows if r["blocks"] == "encoder"}
    assert sorted(encoder) == sorted(
        (labels, t, kind) for labels in ("30", "all") for t, kind in ((0, "x_t"), (5, "x_t"), (5, "x_0"))
    )
    assert encoder[("all", 0, "x_t")]["balanced_accuracy"] > encoder[("30", 0, "x_t")]["balanced_accuracy"]
    heads = [r for r in rows if r["blocks"] == "head"]
    assert len(heads) == 6 and all(r["balanced_accuracy"] < 0.3 for r in heads)  # an untrained head
