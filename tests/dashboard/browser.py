"""A thin layer over Selenium for the dashboard's pages: go to a panel, fill a form by field names, wait for
text, take a screenshot."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


class Browser:
    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.d = driver
        self.base = base
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)

    def go(self, path: str) -> None:
        self.d.get(self.base + path)

    def css(self, selector: str) -> Any:
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        return list(self.d.find_elements(By.CSS_SELECTOR, selector))

    def fill(self, form: str, values: dict[str, str | bool], submit: bool = True) -> None:
        """Fill the fields of the form ``form`` (a CSS selector) by name: text, selects (by visible text or value),
        checkboxes (bool), files (a path); then submit it."""
        f = self.css(form)
        for name, value in values.items():
            field = f.find_elements(By.CSS_SELECTOR, f'[name="{name}"]:not([type="hidden"])')[0]
            tag, kind = field.tag_name, field.get_attribute("type")
            if tag == "select":
                sel = Select(field)
                try:
                    sel.select_by_visible_text(str(value))
                except Exception:
                    sel.select_by_value(str(value))
            elif kind == "checkbox":
                if field.is_selected() != bool(value):
                    field.click()
            else:
                field.clear()
                field.send_keys(str(value))
        if submit:
            self.click(f.find_element(By.CSS_SELECTOR, 'button[type="submit"]'))

    def click(self, element: Any, navigates: bool = True) -> None:
        """Click, and when the click loads a new page wait for it (a later ``go`` must not race the form)."""
        if not navigates:
            element.click()
            return
        self.mark()
        element.click()
        self.wait(lambda: not self.marked() and self.d.execute_script("return document.readyState") == "complete",
                  30, "the click loaded no new page")

    def check(self, selector: str, on: bool = True) -> None:
        box = self.css(selector)
        if box.is_selected() != on:
            box.click()

    def wait(self, what: Callable[[], Any], timeout: float = 30, message: str = "") -> Any:
        # A part that refreshes itself may be swapped out between finding an element and reading it.
        ignored = (AssertionError, StaleElementReferenceException)
        return WebDriverWait(self.d, timeout, poll_frequency=0.2, ignored_exceptions=ignored).until(lambda _d: what(),
                                                                                                    message)

    def wait_text(self, selector: str, text: str, timeout: float = 30) -> None:
        def seen() -> bool:
            return any(text in e.text for e in self.all(selector))

        self.wait(seen, timeout, f"{text!r} never appeared in {selector} on {self.d.current_url}:\n{self.body()[:2000]}")

    def body(self) -> str:
        return str(self.css("body").text)

    def alerts(self) -> list[str]:
        return [e.text for e in self.all(".alert")]

    def no_error(self) -> None:
        errors = [e.text for e in self.all(".alert-error")]
        assert not errors, f"{self.d.current_url}: {errors}"

    def shot(self, name: str) -> None:
        self.d.save_screenshot(str(self.shots / f"{name}.png"))

    def mark(self) -> None:
        """Tag the current page, to tell later whether it was reloaded (a new page has no tag). The tag is on the
        window and on the document: a page the script writes in place of this one (Create Image's upload) keeps
        the window but not the document."""
        self.d.execute_script("window.__tinystackMark = 'same page';"
                              "document.documentElement.setAttribute('data-tinystack-mark', 'same page');")

    def marked(self) -> bool:
        try:
            return bool(self.d.execute_script(
                "return (window.__tinystackMark || null) === 'same page'"
                " && document.documentElement.getAttribute('data-tinystack-mark') === 'same page';"))
        except Exception:  # between two pages
            return True

    def row(self, table: str, text: str) -> Any:
        for tr in self.all(f"{table} tbody tr"):
            if text in tr.text:
                return tr
        raise AssertionError(f"no row with {text!r} in {table} on {self.d.current_url}")

    def file(self, path: Path, data: bytes) -> Path:
        path.write_bytes(data)
        return path

    def downloaded(self, name: str, timeout: float = 20) -> Path:
        target = Path(self.d.downloads) / name
        deadline = time.monotonic() + timeout
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert target.exists(), f"{name} was not downloaded: {list(Path(self.d.downloads).iterdir())}"
        return target
