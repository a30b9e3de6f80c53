"""The Help menu of the main window, and its dialogs.

Keyboard shortcuts… lists every menu action that has a shortcut, read from the actions themselves
(so the list is never out of date); About LipReader… shows the version, the model and the provider
it really runs on, the libraries' versions and the licences (lipreader_app.diagnostics), with *Copy
diagnostics* for a bug report; Open data folder shows the folder of takes and adapted models.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QFont, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QMenuBar,
    QPushButton,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lipreader_app.diagnostics import Diagnostics, collect_diagnostics, diagnostics_text
from lipreader_app.menus import add_action
from lipreader_app.settings import data_folder

if TYPE_CHECKING:
    from lipreader_app.main_window import MainWindow

TAGLINE = "Live lip-reading captions from a camera, a video or the screen, from the lips alone."
KEYS_JOINER = " or "  # between the shortcuts of an action that has several
MENU_PATH_JOINER = " ▸ "  # between a menu and its submenu
COPIED = "Copied to the clipboard."
SHORTCUTS_SIZE = (440, 520)
COLUMN_GAP = 24  # pixels between the longest action and its shortcut
ABOUT_SIZE = (620, 600)
MNEMONIC = re.compile(r"&(.)")  # "&Open" -> "Open", "&&" -> "&"


@dataclass(frozen=True)
class Shortcut:
    """A menu action's keyboard shortcut, as Keyboard shortcuts… lists it."""

    menu: str  # where the action is: "File", or "File ▸ Open Recent" in a submenu
    action: str  # its text without mnemonics: "Open video…"
    keys: str  # its shortcuts in the platform's words: "Ctrl+O", "Ctrl++ or Ctrl+="


def plain_text(action: QAction) -> str:
    """An action's text as read, without its mnemonic '&' (nor a shortcut column after a tab)."""
    return MNEMONIC.sub(r"\1", action.text().split("\t")[0])


def menu_shortcuts(bar: QMenuBar) -> list[Shortcut]:
    """Every action with a shortcut in `bar`'s menus (and their submenus), in menu order; hidden
    actions are left out, disabled ones are not (they have their shortcut when they are enabled)."""
    found: list[Shortcut] = []

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{path}{MENU_PATH_JOINER}{plain_text(action)}")
            elif action.shortcuts() and action.isVisible():
                keys = KEYS_JOINER.join(
                    k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()
                )
                found.append(Shortcut(path, plain_text(action), keys))

    for top in bar.actions():
        if top.menu() is not None:
            walk(top.menu(), plain_text(top))
    return found


class ShortcutsDialog(QDialog):
    """Help ▸ Keyboard shortcuts…: the shortcuts given, under their menus."""

    def __init__(self, shortcuts: list[Shortcut], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(*SHORTCUTS_SIZE)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        menus: dict[str, QTreeWidgetItem] = {}
        for shortcut in shortcuts:
            if shortcut.menu not in menus:
                menus[shortcut.menu] = heading = QTreeWidgetItem(self.tree, [shortcut.menu])
                heading.setFirstColumnSpanned(True)
                font = QFont(heading.font(0))
                font.setBold(True)
                heading.setFont(0, font)
            QTreeWidgetItem(menus[shortcut.menu], [shortcut.action, shortcut.keys])
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(0, self.tree.columnWidth(0) + COLUMN_GAP)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, str, str]]:
        """(menu, action, shortcut) of each row shown, in order (for tests)."""
        rows = []
        for i in range(self.tree.topLevelItemCount()):
            menu = self.tree.topLevelItem(i)
            for j in range(menu.childCount()):
                rows.append((menu.text(0), menu.child(j).text(0), menu.child(j).text(1)))
        return rows


def about_html(d: Diagnostics) -> str:
    """The body of About LipReader…: the model, the provider, the versions, the licences."""
    e = html.escape
    if d.model:
        card = "".join(f"<br>{e(line)}" for line in d.model_card)
        model = f"<b>{e(d.model)}</b><br><small>{e(d.model_path)}</small>{card}"
    else:
        model = "none loaded (Model ▸ Open model…)"
    facts = [("Model", model), ("Runs on", e(d.provider))]
    facts += [(e(name), e(version)) for name, version in d.libraries]
    facts.append(("System", e(d.system)))
    rows = "".join(
        f"<tr><td style='padding:2px 12px 6px 0; white-space:nowrap'><b>{name}</b></td>"
        f"<td style='padding:2px 0 6px 0'>{value}</td></tr>"
        for name, value in facts
    )
    licences = "".join(f"<li>{e(licence)}</li>" for licence in d.licences)
    return f"<table>{rows}</table><h4>Licences</h4><ul style='margin-left:-20px'>{licences}</ul>"


class AboutDialog(QDialog):
    """Help ▸ About LipReader…: `diagnostics` shown, and copied as text by Copy diagnostics."""

    def __init__(self, diagnostics: Diagnostics, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.diagnostics = diagnostics
        self.setWindowTitle("About LipReader")
        self.resize(*ABOUT_SIZE)
        title = QLabel(f"<h2>LipReader {html.escape(diagnostics.version)}</h2>{html.escape(TAGLINE)}")
        title.setWordWrap(True)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(about_html(diagnostics))
        self.copied = QLabel("")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("&Copy diagnostics")
        self.copy_button.setToolTip("Copy these facts as plain text, for a bug report")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.browser, 1)
        layout.addWidget(self.copied)
        layout.addWidget(buttons)

    def text(self) -> str:
        """What the dialog shows, as plain text (for tests)."""
        return self.browser.toPlainText()

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(diagnostics_text(self.diagnostics))
        self.copied.setText(COPIED)


class HelpMenu(QObject):
    """Fills `menu` with the Help actions (children of `window`, whose shortcuts they are); the
    dialogs are the window's (one of each kind at a time)."""

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        add_action(
            window, menu, "&Keyboard shortcuts…", self.show_shortcuts, QKeySequence.StandardKey.HelpContents
        )
        add_action(window, menu, "Open &data folder", self.open_data_folder)
        menu.addSeparator()
        about = add_action(window, menu, "&About LipReader…", self.show_about)
        about.setMenuRole(QAction.MenuRole.AboutRole)  # macOS: in the application menu

    def show_shortcuts(self) -> None:
        """Help ▸ Keyboard shortcuts…: made from the actions as they are now."""
        window = self._window
        window.dialogs.show(
            "shortcuts", None, lambda: ShortcutsDialog(menu_shortcuts(window.menuBar()), window)
        )

    def show_about(self) -> None:
        """Help ▸ About LipReader…: about the model loaded now (another one loaded since: a new dialog)."""
        window, model = self._window, self._window.model
        key = (model.path, model.provider) if model else None
        saved, this_run = window.prefs.provider, window.provider
        # a saved provider that cannot run here gives way to another for this run: both are said
        asked = saved if saved == this_run else f"{saved} in the preferences, {this_run} for this run"
        window.dialogs.show("about", key, lambda: AboutDialog(collect_diagnostics(model, asked), window))

    def open_data_folder(self) -> bool:
        """Help ▸ Open data folder: show the app's data folder (takes recorded, adapted models) in
        the file manager, made first if missing; False, with a message, if it cannot be."""
        folder = data_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._window.notify(f"cannot make the data folder {folder}: {e.strerror or e}")
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self._window.notify(f"cannot open the data folder {folder}: no file manager to show it")
            return False
        return True
