"""odernn-lite: continuous-time hidden dynamics of input→output systems with ODE-RNNs.

The public API, re-exported here; everything else is internal.
"""

from .data import Record as Record
from .data import Stats as Stats
from .data import Windows as Windows
from .data import from_dataframe as from_dataframe
from .data import load_csv as load_csv
from .data import split as split
from .data import windows as windows
from .device import default_device as default_device
from .fields import CTRNNField as CTRNNField
from .fields import FIELDS as FIELDS
from .fields import Field as Field
from .fields import ForumRNNField as ForumRNNField
from .fields import GRUODEField as GRUODEField
from .fields import LinearStateSpace as LinearStateSpace
from .fields import NeuralStateSpace as NeuralStateSpace
from .inputs import Interpolation as Interpolation
from .inputs import interpolate as interpolate
from .metrics import fit as fit
from .metrics import nrmse as nrmse
from .metrics import r2 as r2
from .metrics import rmse as rmse
from .models import GRUModel as GRUModel
from .models import ODEModel as ODEModel
from .models import SequenceModel as SequenceModel
from .models import build_model as build_model
from .solve import METHODS as METHODS
from .solve import Solution as Solution
from .solve import SolverError as SolverError
from .solve import solve as solve
from .train import MultipleShootingTrainer as MultipleShootingTrainer
from .train import Simulation as Simulation
from .train import TBPTTTrainer as TBPTTTrainer
from .train import Trainer as Trainer
from .train import TrainingDiverged as TrainingDiverged
from .train import load_checkpoint as load_checkpoint
from .train import save_checkpoint as save_checkpoint
from .train import simulate as simulate
from . import ablation as ablation
from . import circuits as circuits
from . import datasets as datasets
from . import diagnose as diagnose
from . import explore as explore
from . import forum as forum

__version__ = "0.1.0"
