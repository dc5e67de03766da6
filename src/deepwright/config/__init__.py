"""The config schema: every option deepwright takes, its default, and its validation.

A config is YAML (or a dict, or these objects) with `input_features`, `output_features`, `combiner`,
`preprocessing` and `trainer`. Unknown keys are errors that suggest the nearest valid key; every problem in a
file is reported at once.

One module per part of the schema (scikit-learn style: the modules hold the schemas, this package re-exports
them, so `from deepwright.config import X` is the import to use):

| module          | holds                                                                   |
|-----------------|-------------------------------------------------------------------------|
| `base`          | `Strict` (the base of every schema), missing values, shared option names |
| `tokenizers`    | word, char and BPE tokenizers                                           |
| `encoders`      | the encoders of category, text, image, audio, sequence and series columns |
| `media`         | image and audio columns and their augmentations                         |
| `features`      | the other column types and the `FeatureConfig` union                    |
| `combiner`      | the combiner                                                            |
| `preprocessing` | the train / validation / test split of rows and of time steps           |
| `trainer`       | optimizer, schedule, early stopping, and the two training loops         |
| `table`         | `Config` (model_type ecd)                                               |
| `language`      | `LanguageModelConfig` (model_type lm)                                   |
| `checkpoint`    | a GPT-2 checkpoint folder for `init_from` (its config.json, no torch)   |
| `forecast`      | `ForecastConfig` (model_type forecast)                                  |
| `describe`      | one readable line per validation problem                                |
| `loading`       | `load_config`, `dump_config`, `json_schema`                             |

Importing this package never imports torch.

>>> config = load_config({"input_features": [{"name": "x", "type": "number"}],
...                       "output_features": [{"name": "y", "type": "category"}]})
>>> config.trainer.optimizer.type, config.combiner.dims
('adam', [128])
"""

from __future__ import annotations

from deepwright.config.base import (
    PASSTHROUGH_KEY,
    Activation,
    Initializer,
    MissingStrategy,
    MissingValues,
    Strict,
    files_cannot_be_filled,
    with_default_type,
)
from deepwright.config.checkpoint import GPT2Checkpoint, checkpoint_folder, read_gpt2_checkpoint, resolve_init_from
from deepwright.config.combiner import CombinerConfig, ConcatCombinerConfig
from deepwright.config.encoders import (
    AudioEncoderConfig,
    BagEncoderConfig,
    CategoryEncoderConfig,
    Conv1DEncoderConfig,
    ConvStackEncoderConfig,
    EmbeddingEncoderConfig,
    ImageEncoderConfig,
    LoraOptions,
    OneHotEncoderConfig,
    PretrainedEncoderConfig,
    RecurrentEncoderConfig,
    ResNetEncoderConfig,
    SequenceEncoderConfig,
    SequenceRnnEncoderConfig,
    SequenceTransformerEncoderConfig,
    TextEncoderConfig,
    TransformerEncoderConfig,
)
from deepwright.config.features import (
    OUTPUT_TYPES,
    BinaryFeatureConfig,
    CategoryFeatureConfig,
    FeatureConfig,
    NumberFeatureConfig,
    SequenceFeatureConfig,
    TextFeatureConfig,
    TimeseriesFeatureConfig,
)
from deepwright.config.forecast import STEP_TYPES, ForecastConfig
from deepwright.config.language import (
    CorpusConfig,
    GenerationConfig,
    GPTConfig,
    LanguageModelConfig,
    LanguageModelTokenizerConfig,
    PretrainedTokenizerConfig,
)
from deepwright.config.loading import MODEL_TYPES, AnyConfig, dump_config, json_schema, load_config
from deepwright.config.media import (
    AUDIO_CONV_CHANNELS,
    AudioAugmentationConfig,
    AudioFeatureConfig,
    Augmentation,
    ColorJitter,
    ImageAugmentationConfig,
    ImageFeatureConfig,
    Noise,
    PaddedCrop,
    ResizedCrop,
    Rotation,
    SpectrogramMask,
    TimeShift,
)
from deepwright.config.preprocessing import (
    ForecastPreprocessingConfig,
    ForecastSplitConfig,
    PreprocessingConfig,
    SplitConfig,
    split_fractions,
)
from deepwright.config.table import Config
from deepwright.config.tokenizers import BpeTokenizerConfig, CharTokenizerConfig, TokenizerConfig, WordTokenizerConfig
from deepwright.config.trainer import (
    EarlyStoppingConfig,
    LanguageModelOptimizerConfig,
    LanguageModelScheduleConfig,
    LanguageModelTrainerConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainerConfig,
    TrainingLoopConfig,
)

__all__ = [
    "AUDIO_CONV_CHANNELS",
    "MODEL_TYPES",
    "OUTPUT_TYPES",
    "PASSTHROUGH_KEY",
    "STEP_TYPES",
    "Activation",
    "AnyConfig",
    "AudioAugmentationConfig",
    "AudioEncoderConfig",
    "AudioFeatureConfig",
    "Augmentation",
    "BagEncoderConfig",
    "BinaryFeatureConfig",
    "BpeTokenizerConfig",
    "CategoryEncoderConfig",
    "CategoryFeatureConfig",
    "CharTokenizerConfig",
    "ColorJitter",
    "CombinerConfig",
    "ConcatCombinerConfig",
    "Config",
    "Conv1DEncoderConfig",
    "ConvStackEncoderConfig",
    "CorpusConfig",
    "EarlyStoppingConfig",
    "EmbeddingEncoderConfig",
    "FeatureConfig",
    "ForecastConfig",
    "ForecastPreprocessingConfig",
    "ForecastSplitConfig",
    "GPT2Checkpoint",
    "GPTConfig",
    "GenerationConfig",
    "ImageAugmentationConfig",
    "ImageEncoderConfig",
    "ImageFeatureConfig",
    "Initializer",
    "LanguageModelConfig",
    "LanguageModelOptimizerConfig",
    "LanguageModelScheduleConfig",
    "LanguageModelTokenizerConfig",
    "LanguageModelTrainerConfig",
    "LoraOptions",
    "MissingStrategy",
    "MissingValues",
    "Noise",
    "NumberFeatureConfig",
    "OneHotEncoderConfig",
    "OptimizerConfig",
    "PaddedCrop",
    "PreprocessingConfig",
    "PretrainedEncoderConfig",
    "PretrainedTokenizerConfig",
    "RecurrentEncoderConfig",
    "ResNetEncoderConfig",
    "ResizedCrop",
    "Rotation",
    "ScheduleConfig",
    "SequenceEncoderConfig",
    "SequenceFeatureConfig",
    "SequenceRnnEncoderConfig",
    "SequenceTransformerEncoderConfig",
    "SpectrogramMask",
    "SplitConfig",
    "Strict",
    "TextEncoderConfig",
    "TextFeatureConfig",
    "TimeShift",
    "TimeseriesFeatureConfig",
    "TokenizerConfig",
    "TrainerConfig",
    "TrainingLoopConfig",
    "TransformerEncoderConfig",
    "WordTokenizerConfig",
    "checkpoint_folder",
    "dump_config",
    "files_cannot_be_filled",
    "json_schema",
    "load_config",
    "read_gpt2_checkpoint",
    "resolve_init_from",
    "split_fractions",
    "with_default_type",
]
