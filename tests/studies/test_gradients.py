"""The vanishing-gradient study shows what it claims, on a budget that fits the test suite."""

import torch

from lrcn.studies.gradients import StudyConfig, make_memory_batch, run_study, summary_rows


def test_memory_batch_holds_the_answer_only_in_the_first_step():
    x, y = make_memory_batch(16, 7, 4, 3, torch.Generator().manual_seed(0))
    assert x.shape == (16, 7, 7) and y.shape == (16,)
    assert torch.equal(x[:, 0, :4].argmax(dim=1), y)
    assert torch.all(x[:, 1:, :4] == 0)  # later steps are distractors only
    torch.testing.assert_close(x.sum(dim=2), torch.ones(16, 7))


def test_lstm_remembers_where_the_rnn_forgets():
    study = run_study(StudyConfig(lengths=(5, 40), train_steps=300, eval_size=256))
    rows = {row["T"]: row for row in summary_rows(study)}
    chance = study["chance"]
    # short sequences: both learn
    assert rows[5]["rnn_accuracy"] > 0.9 and rows[5]["lstm_accuracy"] > 0.9
    # long sequences: the LSTM still learns, the RNN stays near chance
    assert rows[40]["lstm_accuracy"] > 0.9
    assert rows[40]["rnn_accuracy"] < chance + 0.2
    # the gradient reaching the first step: the RNN's vanishes, the LSTM's does not
    assert rows[40]["rnn_first_step_gradient"] < 1e-3
    assert rows[40]["lstm_first_step_gradient"] > 1e-2
    rnn_init = study["results"]["rnn"]["40"]["grad_norm_init"]
    assert rnn_init[-1] / rnn_init[0] < 1e-6  # decays geometrically with distance
