"""Silence third-party notices that a user of this package can do nothing about."""
import warnings


def quiet_third_party_warnings() -> None:
    """Hide setuptools' ``pkg_resources is deprecated`` notice when mmengine triggers it.

    mmengine imports (and ``importlib.reload``s) ``pkg_resources`` each time a config names an
    ``mmdet::`` base, so every tool printed the notice several times. The filter is limited to
    imports made by mmengine and importlib: a user's own ``import pkg_resources`` still warns.
    """
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning,
                            module=r'(mmengine|importlib)\b')
