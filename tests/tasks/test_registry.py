"""Every registered task and model keeps the seam's contract (parametrised over the registries,
so a new task or model is checked without a new test)."""

from typing import Annotated

import pytest
from pydantic import Field, TypeAdapter

from lrcn.models import list_models, model_entry
from lrcn.tasks import get_task, list_tasks


@pytest.mark.parametrize("name", list_tasks())
def test_a_task_declares_what_the_shared_train_and_the_cli_read(name):
    task = get_task(name)
    assert task.name == name
    fields = task.config_class.model_fields
    assert {"task", "data", "model", "train"} <= set(fields)
    # best/ is picked on validation, never on the test split.
    assert task.primary_metric.startswith("val_") and task.primary_metric in task.logged_metrics
    for options in (task.evaluate_options, task.predict_options):
        flags = [o.flag for o in options]
        assert len(flags) == len(set(flags))
    # Every model of the task's family is a choice of its config's model section.
    models = list_models(name)
    assert models
    section = fields["model"]
    choices = TypeAdapter(Annotated[section.annotation, Field(discriminator=section.discriminator)])
    for model in models:
        assert model_entry(model).family.task == name
        assert choices.validate_python({"name": model}).name == model


@pytest.mark.parametrize("model", list_models())
def test_every_model_belongs_to_a_registered_task(model):
    assert model_entry(model).family.task in list_tasks()


def test_an_option_means_the_same_in_every_task_that_declares_it():
    seen = {}
    for name in list_tasks():
        task = get_task(name)
        for option in (*task.evaluate_options, *task.predict_options):
            kind = seen.setdefault(option.name, option.type)
            assert kind is option.type, option.name
